"""The learned engine stays optional: the core never imports torch, and without it the
command line says how to get it, with its own exit code. Runs with or without torch."""

from __future__ import annotations

import subprocess
import sys

from medswap.cli import main
from medswap.errors import MissingExtraError


def test_core_does_not_import_torch():
    code = (
        "import sys, medswap.cli, medswap.pipeline, medswap.cli.commands, medswap.cli.train; "
        "medswap.cli.build_parser(); assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_torch_train_and_learned_engine_say_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    rc = main(["train", "--subject", "a.mp4", "--donor", "average", "-o", str(tmp_path / "m")])
    assert rc == MissingExtraError.exit_code == 18
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["medswap: error: the learned engine needs torch: pip install 'medswap[learned]'"]


def test_engine_options_are_checked(tmp_path, capsys):
    from media import portrait_clip

    clip = portrait_clip(tmp_path / "c.mp4", n_frames=3)
    rc = main(["deidentify", str(clip), "-o", str(tmp_path / "o.mp4"), "--engine", "learned"])
    assert rc == 2
    assert "needs --model" in capsys.readouterr().err
    rc = main(["deidentify", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", "m.medswap"])
    assert rc == 2
    assert "--model is used by --engine learned only" in capsys.readouterr().err


def test_compare_engines_are_checked_before_any_work(monkeypatch, capsys, tmp_path):
    out = str(tmp_path / "cmp")
    rc = main(["compare", "missing.mp4", "-o", out, "--engines", "mesh,gan"])
    assert rc == 2
    assert capsys.readouterr().err.strip() == (
        "medswap: error: unknown engine 'gan'; choose from mesh, learned"
    )
    rc = main(["compare", "missing.mp4", "-o", out, "--engines", "learned", "--sweep"])
    assert rc == 2
    assert "--sweep runs the mesh engine only" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "torch", None)
    rc = main(["compare", "missing.mp4", "-o", out, "--engines", "mesh,learned"])
    assert rc == MissingExtraError.exit_code == 18
    assert "pip install 'medswap[learned]'" in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists(), "nothing is written before the checks pass"
