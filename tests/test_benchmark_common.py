"""The benchmarks' FLOP counter: the compute floor of every speed figure rests on it."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from common import count_flops  # noqa: E402

from pix2pix.training.augment import r1_penalty  # noqa: E402


def test_count_flops_counts_matmuls_and_convolutions_and_runs_through_a_gradient_of_a_gradient():
    lin = torch.nn.Linear(64, 32, bias=False)
    x = torch.rand(8, 64)
    assert count_flops(lambda: lin(x)) == 2 * 8 * 64 * 32
    conv = torch.nn.Conv2d(6, 1, 3, padding=1, bias=False)
    img = torch.rand(2, 6, 16, 16)
    forward = count_flops(lambda: conv(img))
    assert forward == 2 * 2 * 16 * 16 * 6 * 9

    def r1() -> None:  # the penalty's autograd.grad, which FlopCounterMode's module hooks refuse
        x = img.clone().requires_grad_(True)
        r1_penalty([conv(x)], x).backward()

    # forward, the input gradient (create_graph), then its backward: several convolutions' worth
    assert count_flops(r1) >= 3 * forward
