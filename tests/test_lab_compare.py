"""adamkit compare: its variants are what the user named, each once."""

import pytest

from adamkit.lab import cli


@pytest.mark.parametrize("extra, message", [
    (["--inits", "xavier,xavier_normal"], "inits: xavier and xavier_normal name the same init (xavier_normal)"),
    (["--inits", "he_normal,zeros,he"], "inits: he_normal and he name the same init (he_normal)"),
    (["--precisions", "fp32,fp32-nearest"], "precisions: fp32 and fp32-nearest name the same precision (fp32)"),
])
def test_compare_refuses_two_names_of_one_variant(tmp_path, capsys, extra, message):
    out = tmp_path / "c"
    assert cli.main(["compare", "line", "--steps", "5", "--seeds", "2", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()
