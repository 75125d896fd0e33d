import json

import pytest


@pytest.fixture()
def info(srkit_cli):
    def info(*args):
        r = srkit_cli("info", *args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    return info


def test_edsr_baseline_x4_macs_match_the_paper(info):
    d = info("edsr-baseline", "--scale", "4")
    assert d["params"] == 1_517_571
    assert abs(d["macs_720p_G"] - 114) / 114 < 0.01  # published 114G MACs at 1280x720 output
    assert d["receptive_field"] == 36 and d["color_space"] == "rgb"


def test_reparameterised_model_is_costed_deployed(info):
    d = info("ecbsr-m16c64", "--scale", "4")
    assert abs(d["params"] - 603_000) / 603_000 < 0.01
    assert d["params_training_form"] > d["params"]
    assert d["color_space"] == "y"


def test_unknown_model_one_line(srkit_cli):
    r = srkit_cli("info", "nope")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1


def test_labels_say_what_the_model_is(srkit_cli):
    import json

    r = srkit_cli("info", "balanced-x4", "--json")
    facts = json.loads(r.stdout)
    assert facts["arch"] == "ecbsr-m12c48"  # built from the ecbsr-m16c64 entry with 12 modules, 48 channels
    r = srkit_cli("info", "bicubic", "--json")
    facts = json.loads(r.stdout)
    assert facts["channels"] == "any" and facts["color_space"] == "any (per channel)"
    r = srkit_cli("info", "balanced-x4")
    assert "257,440" in r.stdout and "257440" not in r.stdout  # thousands separators on every count
