"""A pytest base class whose tests are the kit's checks: inherit it, supply a factory.

Modelled on pandas' extension-array base tests: a user's test module holds

.. code-block:: python

    class TestMyFlow(BijectorSuite):
        event_shape = (4,)

        def make_bijector(self):
            return MyFlow(4)

and pytest runs every check of :data:`~sandflow.testing.CHECKS` as its own test,
``TestMyFlow::test_round_trip_x[float32-cpu]`` and so on, once per dtype
(``--dtype float32|float64|both``) on the device of ``--device`` (default
``cpu``). The two options come from ``sandflow.testing.plugin``: add
``pytest_plugins = ["sandflow.testing.plugin"]`` to your ``conftest.py`` (or
define ``--device`` and ``--dtype`` there yourself); without them the suite
runs both dtypes on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import constraints

from sandflow.testing.check import CHECKS, domain_inputs, inspect_bijector, perturb

__all__ = ["BijectorSuite"]


def _property_test(name: str) -> Callable[[BijectorSuite, str, str], None]:
    def test(self: BijectorSuite, kit_dtype: str, kit_device: str) -> None:
        self.verdict(name, kit_dtype, kit_device)

    test.__name__ = f"test_{name}"
    test.__doc__ = CHECKS[name]
    return test


class BijectorSuite:
    """Every property of the kit as a pytest test; a subclass supplies :meth:`make_bijector`.

    Class attributes tune the run: ``event_shape`` and ``batch_shape`` of the
    inputs, ``input_scale`` (unconstrained scale of the inputs, see
    :func:`~sandflow.testing.domain_inputs`), ``perturbation`` (noise added to
    every parameter of a fresh module, ``None`` for none), ``inverse`` (False
    for a forward-only transform), ``triangular`` (claim a triangular
    Jacobian), ``compile`` (also check ``torch.compile``), ``rtol``/``atol``
    (default by dtype), ``seed`` and ``known_failures`` (check name -> reason:
    the test is an expected failure, and fails once the check passes). While
    :meth:`make_bijector` runs,
    ``self.dtype`` and ``self.device`` hold the test's dtype and device (for
    transforms that are not modules; modules are moved with ``.to``).

    Example:
        >>> class TestExp(BijectorSuite):
        ...     def make_bijector(self):
        ...         return torch.distributions.ExpTransform()
        >>> TestExp().verdict("round_trip_x", "float64", "cpu")
    """

    event_shape: tuple[int, ...] = ()
    batch_shape: tuple[int, ...] = (4,)
    input_scale: float = 1.0
    perturbation: float | None = None
    inverse: bool = True
    triangular: bool = False
    compile: bool = False
    rtol: float | None = None
    atol: float | None = None
    seed: int = 0
    known_failures: Mapping[str, str] = MappingProxyType({})
    dtype: torch.dtype = torch.float32
    device: torch.device = torch.device("cpu")

    def make_bijector(self) -> Any:
        """The transform under test (or a conditional one, with :meth:`make_context`)."""
        raise NotImplementedError("a BijectorSuite subclass implements make_bijector()")

    def make_context(self) -> Tensor | None:
        """The context of a conditional transform (default: none)."""
        return None

    def make_inputs(self, transform: Any) -> Tensor:
        """Inputs: ``batch_shape + event_shape`` points of the transform's domain."""
        generator = torch.Generator().manual_seed(self.seed)
        domain = getattr(transform, "domain", constraints.real)  # conditional: real inputs
        return domain_inputs(
            domain,
            self.event_shape,
            batch_shape=self.batch_shape,
            scale=self.input_scale,
            dtype=self.dtype,
            device=self.device,
            generator=generator,
        )

    def build(self, seed: int) -> Any:
        """:meth:`make_bijector` under ``seed``, perturbed, on the test's device and dtype."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            transform = self.make_bijector()
            if self.perturbation and isinstance(transform, nn.Module):
                perturb(transform, scale=self.perturbation)
        if isinstance(transform, nn.Module):
            transform = transform.to(dtype=self.dtype, device=self.device)
        return transform

    def verdict(self, name: str, dtype: str, device: str) -> None:
        """Run check ``name``; skip the test if it does not apply, fail it if it fails."""
        self.dtype, self.device = getattr(torch, dtype), torch.device(device)
        transform = self.build(self.seed)
        context = self.make_context()
        if context is not None:
            context = context.to(dtype=self.dtype, device=self.device)
        report = inspect_bijector(
            transform,
            self.make_inputs(transform),
            context=context,
            inverse=self.inverse,
            triangular=self.triangular,
            compile=self.compile,
            factory=lambda: self.build(self.seed + 1),
            checks=[name],
            rtol=self.rtol,
            atol=self.atol,
        )
        result = report[name]
        if result.status == "skipped":
            pytest.skip(result.detail)
        known = self.known_failures.get(name)
        if known is not None:
            if result.status == "failed":
                pytest.xfail(f"{known}: {result.message}")
            raise AssertionError(f"{name} passes now: remove it from known_failures ({known})")
        assert result.status == "passed", result.message

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrise every test over ``--dtype`` and the ``--device`` of the run."""
        if "kit_dtype" not in metafunc.fixturenames:
            return
        choice = metafunc.config.getoption("--dtype", default="both")
        device = str(metafunc.config.getoption("--device", default="cpu"))
        dtypes = ["float32", "float64"] if choice == "both" else [choice]
        metafunc.parametrize(
            ("kit_dtype", "kit_device"),
            [(dtype, device) for dtype in dtypes],
            ids=[f"{dtype}-{device}" for dtype in dtypes],
        )

    test_shapes = _property_test("shapes")
    test_derived_calls = _property_test("derived_calls")
    test_round_trip_x = _property_test("round_trip_x")
    test_round_trip_y = _property_test("round_trip_y")
    test_log_det = _property_test("log_det")
    test_inverse_log_det = _property_test("inverse_log_det")
    test_batch_independence = _property_test("batch_independence")
    test_triangular = _property_test("triangular")
    test_gradients = _property_test("gradients")
    test_state_dict = _property_test("state_dict")
    test_pyro_module = _property_test("pyro_module")
    test_dtype = _property_test("dtype")
    test_device = _property_test("device")
    test_compile = _property_test("compile")
