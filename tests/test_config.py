"""DeidentifyConfig: checked when made and when changed, recorded without paths, fingerprinted."""

from __future__ import annotations

from dataclasses import replace

import pytest

from medswap.config import DeidentifyConfig
from medswap.errors import UsageError
from medswap.swap.engine import SwapSettings


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "smudge"}, "unknown method 'smudge'; choose one of swap, blur, pixelate, mask"),
        ({"audio": "mute"}, "--audio must be 'drop' or 'keep', got 'mute'"),
        ({"shape": 1.5}, "--shape must be between 0 and 1, got 1.5"),
        ({"method": "blur", "strength": 9.0}, "--strength for blur must be between 0.1 and 4"),
        ({"strength": 1.0}, "--strength applies to --method blur or pixelate, not swap"),
        ({"engine": "learned"}, "--engine learned needs --model MODEL.medswap"),
        ({"model": "m.medswap"}, "--model is used by --engine learned only"),
        ({"text": "hide"}, "--text must be one of"),
        ({"mask_shape": "star"}, "unknown mask shape 'star'"),
    ],
)
def test_a_bad_value_is_refused_with_one_line_naming_it(options, message):
    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        DeidentifyConfig(**options)


def test_a_change_is_checked_again():
    config = DeidentifyConfig(method="blur", strength=2.0)
    with pytest.raises(UsageError, match="--strength for pixelate"):
        replace(config, method="pixelate", strength=64.0)
    assert config.with_options(strength=3.0).strength == 3.0


def test_shape_is_applied_to_the_swap_settings_it_overrides():
    config = DeidentifyConfig(shape=0.25, swap_settings=SwapSettings(detail=1.0))
    assert (config.swap.shape, config.swap.detail) == (0.25, 1.0)
    assert DeidentifyConfig().swap.shape == SwapSettings().shape


def test_the_report_records_file_names_never_paths(tmp_path):
    donor = tmp_path / "clinic" / "donor.png"
    record = DeidentifyConfig(donors=[donor], gallery=tmp_path / "lineup").to_json()
    assert record["donors"] == ["donor.png"] and record["gallery"] == "lineup"
    assert str(tmp_path) not in repr(record)


def test_the_fingerprint_changes_with_what_changes_the_output():
    base = DeidentifyConfig()
    assert base.fingerprint() == DeidentifyConfig().fingerprint()
    changed = [
        replace(base, shape=0.5),
        replace(base, swap_settings=SwapSettings(keep_eyes="gaze")),
        replace(base, audit=True),
        replace(base, donors=("astronaut",)),
    ]
    assert len({c.fingerprint() for c in changed} | {base.fingerprint()}) == 5
