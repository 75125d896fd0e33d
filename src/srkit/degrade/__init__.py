"""The degradation model ``I_LR = D(I_HR; theta) + n``: blur kernels, resize, noise, JPEG and seeded pipelines."""
