"""The ``sandflow demo`` job: flows, diffusion and the KL question, with figures and a report."""
