"""One `ArchFamily` per family module: `FAMILIES` is the one table, `ARCHS` and `DETECTORS` are derived from it;
every family recognises checkpoints of each of its architectures; `pixel_shuffle_scale` is the one scale helper."""

import importlib
from types import MappingProxyType

import pytest
import torch

import srkit.archs
from srkit.archs import ARCHS, DETECTORS, FAMILIES, build
from srkit.archs._spec import ArchFamily, pixel_shuffle_scale

# Heavy defaults shrunk (as in test_contract); detection reads the configuration from the shapes either way.
SMALL = {
    "edsr": dict(num_block=2),
    "rcan": dict(num_group=2, num_block=2),
    "rrdbnet": dict(num_block=1),
    "swinir": dict(depths=(2, 2), num_heads=(2, 2), embed_dim=24),
    "swinir-light": dict(depths=(2,), num_heads=(2,), embed_dim=12),
}
DETECTED = [(f.name, arch) for f in FAMILIES if f.detect is not None for arch in f.specs]


def test_family_names_unique_and_one_module_each():
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    # Detection order (the first family that recognises a state dict wins); discriminators (no detection) last.
    assert names == ["edsr", "rcan", "vdsr", "classic", "rrdbnet", "srvgg", "swinir", "imdn", "rlfn", "span",
                     "safmn", "smfanet", "ecbsr", "conditioned", "resshift",
                     "recurrent_vsr", "discriminators"]
    for family in FAMILIES:
        assert importlib.import_module(f"srkit.archs.{family.name}").FAMILY is family


def test_every_arch_belongs_to_exactly_one_family():
    owners: dict[str, list[str]] = {}
    for family in FAMILIES:
        for name, spec in family.specs.items():
            owners.setdefault(name, []).append(family.name)
            assert ARCHS[name] is spec
            assert spec.family == family.name
    assert {name: len(fams) for name, fams in owners.items()} == {name: 1 for name in ARCHS}
    # ARCHS lists the families' architectures in family order.
    assert list(ARCHS) == [name for family in FAMILIES for name in family.specs]


def test_detectors_are_derived_from_the_families():
    expected = []
    for family in FAMILIES:
        if family.detect is None:
            assert not family.layouts
            assert all(spec.kind == "discriminator" for spec in family.specs.values())
            continue
        expected.append((family.name, family.detect, None))
        expected += [(f"{family.name} ({label})", family.detect, convert) for label, convert in family.layouts.items()]
    assert list(DETECTORS) == expected
    assert ("ecbsr (EDSR-codebase layout)", srkit.archs.ecbsr.detect_ecbsr,
            srkit.archs.ecbsr.convert_ecbsr_edsr_state_dict) in DETECTORS


@pytest.mark.parametrize(("family_name", "arch"), DETECTED)
def test_family_detects_each_of_its_architectures(family_name, arch):
    family = next(f for f in FAMILIES if f.name == family_name)
    assert family.detect is not None
    for scale in ARCHS[arch].scales:
        sd = build(arch, scale=scale, **SMALL.get(arch, {})).module.state_dict()
        found = family.detect(sd)
        assert found is not None, (arch, scale)
        name, found_scale, options = found
        assert name == arch and found_scale in (None, scale), (arch, scale, found)
        # The options are complete: they rebuild a network that takes the state dict as it is.
        build(name, scale=scale, **options).module.load_state_dict(sd, strict=True)
        # And no family tried before this one claims it (detection order has no shadowing).
        first = next(label for label, detect, convert in DETECTORS if convert is None and detect(sd) is not None)
        assert first == family_name, (arch, scale, first)


def test_extra_layout_is_tried_after_the_plain_one():
    from srkit.models import model_from_state_dict

    m = build("ecbsr-m4c16", scale=2, colors=3)
    sd = m.module.state_dict()
    last = max(int(k.split(".")[1]) for k in sd)
    # The authors' EDSR-codebase layout: head.0 / body.<i> / tail.0 around the same modules.
    edsr_layout = {}
    for k, v in sd.items():
        i, rest = int(k.split(".")[1]), ".".join(k.split(".")[2:])
        key = "head.0" if i == 0 else ("tail.0" if i == last else f"body.{i - 1}")
        edsr_layout[f"{key}.{rest}"] = v
    assert srkit.archs.ecbsr.detect_ecbsr(edsr_layout) is None
    loaded = model_from_state_dict(edsr_layout)
    assert loaded.info.arch == "ecbsr-m4c16" and loaded.info.scale == 2
    x = torch.rand(1, 3, 8, 9)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), m.module.eval()(x))


def test_family_is_checked_and_read_only():
    spec = ARCHS["rlfn"]
    with pytest.raises(ValueError, match="another family"):
        ArchFamily(name="span", specs={"rlfn": spec})
    with pytest.raises(ValueError, match="no architectures"):
        ArchFamily(name="rlfn", specs={})
    with pytest.raises(ValueError, match="without a detect"):
        ArchFamily(name="rlfn", specs={"rlfn": spec}, layouts={"x": dict})
    family = ArchFamily(name="rlfn", specs={"rlfn": spec})
    assert isinstance(family.specs, MappingProxyType)
    with pytest.raises(TypeError):
        family.specs["other"] = spec


@pytest.mark.parametrize(("out_channels", "channels", "scale"), [
    (48, 3, 4), (27, 3, 3), (12, 3, 2), (3, 3, 1), (10, 3, None), (18, 3, None), (256, 64, 2), (576, 64, 3),
    (16, 1, 4), (0, 3, None), (3, 0, None), (2, 3, None),
])
def test_pixel_shuffle_scale(out_channels, channels, scale):
    assert pixel_shuffle_scale(out_channels, channels) == scale
