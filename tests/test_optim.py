"""hrlzoo.nets.optim: Adam and AdamW equal torch.optim's, bit for bit, without importing torch._dynamo."""

import subprocess
import sys

import pytest
import torch

from hrlzoo.nets.optim import Adam, AdamW


def _model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(7, 16), torch.nn.LayerNorm(16), torch.nn.GELU(), torch.nn.Linear(16, 3))


@pytest.mark.parametrize("ours,theirs,kw", [
    (Adam, torch.optim.Adam, dict(lr=3e-4)),
    (Adam, torch.optim.Adam, dict(lr=1e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    (AdamW, torch.optim.AdamW, dict(lr=1e-3, weight_decay=0.05)),
    (AdamW, torch.optim.AdamW, dict(lr=1e-4, betas=(0.9, 0.99))),
])
def test_equal_to_torch_bit_for_bit(ours, theirs, kw):
    a, b = _model(0), _model(0)
    oa, ob = ours(a.parameters(), **kw), theirs(b.parameters(), **kw)
    gen = torch.Generator().manual_seed(1)
    for step in range(60):
        x = torch.randn(32, 7, generator=gen)
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad(set_to_none=True)
            out = m(x)
            # every 7th step the last layer gets no gradient: its step count must lag, as torch's does
            loss = out.pow(2).mean() if step % 7 else m[0](x).sum()
            loss.backward()
            o.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(_model(0)[0].weight, a[0].weight)  # it did train


def test_state_dict_round_trip_continues_identically():
    a, b = _model(2), _model(2)
    oa = Adam(a.parameters(), lr=1e-2)
    x = torch.randn(8, 7)
    for _ in range(3):
        oa.zero_grad(); a(x).sum().backward(); oa.step()
    b.load_state_dict(a.state_dict())
    ob = Adam(b.parameters(), lr=1e-2)
    ob.load_state_dict(oa.state_dict())
    for m, o in ((a, oa), (b, ob)):
        o.zero_grad(); m(x).pow(2).sum().backward(); o.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Adam(_model(0).parameters(), lr=-1e-3)
    with pytest.raises(ValueError):
        Adam(_model(0).parameters(), betas=(0.9, 1.0))
    with pytest.raises(ValueError):
        Adam([])


def test_a_training_step_does_not_import_dynamo():
    code = ("import sys, torch; from hrlzoo.nets.optim import AdamW; m = torch.nn.Linear(3, 3); "
            "o = AdamW(m.parameters()); m(torch.ones(2, 3)).sum().backward(); o.step(); o.zero_grad(); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
