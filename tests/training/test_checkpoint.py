"""Checkpoints are safetensors + JSON: they round-trip a trainer's state, and a pickle is never loaded."""

import os
import pickle

import pytest
import torch

from training.checkpoint import CheckpointError, load_state, save_state


def test_state_round_trips_with_int_keys_tuples_and_shared_tensors(tmp_path):
    w = torch.randn(3, 4)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.randn(2))], lr=1e-3, betas=(0.9, 0.98))
    opt.state_dict()
    state = {"step": 7, "elapsed": 1.5, "nan": float("nan"), "model": {"a": w, "b": w},  # b shares a's storage
             "optimizer": {"state": {0: {"exp_avg": torch.ones(2), "step": torch.tensor(3.0)}},
                           "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.98), "params": [0]}]},
             "rng": torch.get_rng_state(), "evals": [{"step": 1, "nDCG@10": 0.5}]}
    save_state(state, tmp_path)
    back = load_state(tmp_path)
    assert back["step"] == 7 and back["elapsed"] == 1.5 and back["nan"] != back["nan"]
    assert torch.equal(back["model"]["a"], w) and torch.equal(back["model"]["b"], w)
    assert list(back["optimizer"]["state"]) == [0]
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.98)
    assert torch.equal(back["rng"], torch.get_rng_state())
    assert back["evals"] == state["evals"]


class _Payload:
    def __reduce__(self):  # what a crafted checkpoint does: run a command when unpickled
        return (os.system, (f"touch {os.environ['LSR_PWNED']}",))


def test_a_crafted_pickle_checkpoint_is_refused_and_never_run(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("LSR_PWNED", str(marker))
    ckpt = tmp_path / "step-0000001"
    ckpt.mkdir()
    with open(ckpt / "state.pt", "wb") as f:
        pickle.dump({"model": _Payload()}, f)
    with pytest.raises(CheckpointError, match="older lsr, a pickle"):
        load_state(ckpt)
    assert not marker.exists()


def test_corrupt_checkpoints_name_the_folder(tmp_path):
    save_state({"x": torch.zeros(2)}, tmp_path)
    (tmp_path / "tensors.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="tensors.safetensors cannot be read"):
        load_state(tmp_path)
    (tmp_path / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="checkpoint.json is corrupt"):
        load_state(tmp_path)
