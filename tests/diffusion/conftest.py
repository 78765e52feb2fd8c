"""Gaussian data x0 ~ N(m, s^2) elementwise: the optimal denoiser and the ELBO in closed form."""

import math

import pytest
import torch


class GaussianCase:
    """Everything computed here from the betas alone, independently of the library."""

    m = torch.tensor([0.5, -1.0])
    s = torch.tensor([0.7, 0.3])

    def sample(self, n):
        return self.m + self.s * torch.randn(n, 2)

    def log_prob(self, x):
        return torch.distributions.Normal(self.m, self.s).log_prob(x).sum(-1)

    def entropy(self):
        return float((0.5 * torch.log(2 * math.pi * math.e * self.s.double() ** 2)).sum())

    @staticmethod
    def alpha_bars(betas):
        """alpha_bar_t for t = 0..T from the T betas, by a plain running product."""
        out, prod = [1.0], 1.0
        for b in betas.tolist():
            prod *= 1.0 - b
            out.append(prod)
        return torch.tensor(out, dtype=torch.float64)

    def optimal(self, betas, parameterization):
        """E[eps | x_t], E[x_0 | x_t] or E[v | x_t] for the Gaussian data: linear in x_t."""
        a = self.alpha_bars(betas).float()[:, None]  # (T + 1, 1)
        var = a * self.s**2 + 1 - a  # Var(x_t)
        eps_slope = (1 - a).sqrt() / var  # E[eps | x_t] = eps_slope (x_t - sqrt(a) m)
        x0_slope = a.sqrt() * self.s**2 / var  # E[x0 | x_t] = m + x0_slope (x_t - sqrt(a) m)
        slope = {
            "eps": eps_slope,
            "x0": x0_slope,
            "v": a.sqrt() * eps_slope - (1 - a).sqrt() * x0_slope,
        }[parameterization]
        at_zero = {"eps": 0.0, "x0": self.m, "v": -(1 - a).sqrt() * self.m}[parameterization]
        intercept = at_zero - slope * a.sqrt() * self.m

        def model(xt, t):
            return slope[t] * xt + intercept[t]

        return model

    def reverse_variances(self, betas, reverse_variance):
        """sigma_t^2 for t = 1..T under the t = 1 convention of the library's docstring."""
        b = betas.double()
        abar = self.alpha_bars(betas)
        post = b * (1 - abar[:-1]) / (1 - abar[1:])
        if reverse_variance == "beta":
            return b
        return torch.cat([post[1:2], post[1:]])

    def expected_elbo(self, betas, reverse_variance):
        """E_data[ELBO] = E_q[log p(x_{0:T}) - log q(x_{1:T} | x_0)] with the optimal mean."""
        b = betas.double()
        T = len(b)
        abar = self.alpha_bars(betas)
        m, s = self.m.double(), self.s.double()
        var = abar[:, None] * s**2 + 1 - abar[:, None]  # Var(x_t), t = 0..T
        sigma2 = self.reverse_variances(betas, reverse_variance)
        total = -0.5 * math.log(2 * math.pi) - 0.5 * (var[T] + abar[T] * m**2)
        for t in range(1, T + 1):
            # E (x_{t-1} - E[x_{t-1} | x_t])^2 = Var(x_{t-1} | x_t)
            resid = var[t - 1] * (1 - (1 - b[t - 1]) * var[t - 1] / var[t])
            total = (
                total - 0.5 * torch.log(2 * math.pi * sigma2[t - 1]) - resid / (2 * sigma2[t - 1])
            )
            total = total + 0.5 * torch.log(2 * math.pi * b[t - 1]) + 0.5  # - E log q(x_t|x_{t-1})
        return float(total.sum())

    def expected_denoising(self, betas, reverse_variance):
        """E KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) for t = 2..T, summed over the 2 dims."""
        b = betas.double()
        abar = self.alpha_bars(betas)
        s2 = self.s.double() ** 2
        sigma2 = self.reverse_variances(betas, reverse_variance)
        out = []
        for t in range(2, len(b) + 1):
            post_var = b[t - 1] * (1 - abar[t - 1]) / (1 - abar[t])
            coef = abar[t - 1].sqrt() * b[t - 1] / (1 - abar[t])
            var_x0 = s2 * (1 - abar[t]) / (abar[t] * s2 + 1 - abar[t])  # Var(x_0 | x_t)
            sig = sigma2[t - 1]
            kl = 0.5 * (torch.log(sig / post_var) + (post_var + coef**2 * var_x0) / sig - 1)
            out.append(float(kl.sum()))
        return torch.tensor(out, dtype=torch.float64)


@pytest.fixture
def gaussian_case():
    return GaussianCase()


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """These tensors are small: every test here runs on one thread."""
