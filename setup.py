"""The optional C kernel of the count loss (genevae/model/_count_kernel.c); the rest of
the package is declared in pyproject.toml. Without a C compiler the build skips it and
genevae uses its torch path (see genevae.model.count_loss)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "genevae.model._count_kernel",
            sources=["src/genevae/model/_count_kernel.c"],
            # -ffast-math lets gcc call libmvec's vector expf / log1pf; the kernel needs
            # no inf or NaN semantics beyond passing them through. Compile flags only:
            # linked with -ffast-math, gcc 12 adds crtfastmath.o, which flushes subnormal
            # floats to zero in the whole process (tests/test_count_loss.py checks).
            extra_compile_args=["-O3", "-ffast-math", "-fopenmp-simd", "-fvisibility=default"],
            libraries=["m"],
            optional=True,
        )
    ]
)
