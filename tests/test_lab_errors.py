"""Bad input to the lab's commands: exit code 2, one line naming the parameter, nothing written."""

import pytest

from adamkit.lab import cli


def _refused(capsys, argv, out, message):
    assert cli.main([*argv, "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()
    return err


@pytest.mark.parametrize("command", [["run", "line"], ["demo"]])
def test_a_seed_beyond_64_bits(tmp_path, capsys, command):
    _refused(capsys, [*command, "--steps", "2", "--seed", str(2**64)], tmp_path / "x",
             "seed must be an integer >= 0 and <= 18446744073709551615, got 18446744073709551616")


def test_the_largest_seed_runs(tmp_path):
    assert cli.main(["run", "line", "--steps", "2", "--seed", str(2**64 - 1), "--quiet",
                     "--out", str(tmp_path / "x")]) == 0


def test_a_data_line_over_the_csv_field_limit(tmp_path, capsys):
    data = tmp_path / "ratings.csv"
    data.write_text("user,item,rating\n" + "".join(f"u{k},i{k},3\n" for k in range(30)) + "u,i," + "9" * 140_000)
    _refused(capsys, ["run", "recsys", "--data", str(data)], tmp_path / "x",
             f"--data {str(data)!r}, line 32: 140004 characters; a user,item,rating line has at most 4096")


def test_control_characters_in_a_data_file_name_are_escaped(tmp_path, capsys):
    data = tmp_path / "bad\x1b[31mname\x07.csv"
    data.write_text("u,i\n" * 30)
    err = _refused(capsys, ["run", "recsys", "--data", str(data)], tmp_path / "x",
                   "line 1: expected 3 columns user,item,rating, got 2")
    assert "\x1b" not in err and "\x07" not in err and "\\x1b[31mname\\x07" in err
    data = tmp_path / "latin\x1b.txt"
    data.write_bytes(b"\xff" * 5000)
    err = _refused(capsys, ["run", "text", "--data", str(data)], tmp_path / "x", "line 1: not UTF-8 text")
    assert "\x1b" not in err


@pytest.mark.parametrize("argv, message", [
    (["run", "line", "--steps", str(10**23)], "steps must be an integer >= 1 and <= 1000000000, got 1"),
    (["compare", "line", "--seeds", str(10**14)], "the comparison has 400000000000000 runs (seeds × optimizers"),
])
def test_sizes_past_any_plan_are_refused_at_once(tmp_path, capsys, argv, message):
    _refused(capsys, argv, tmp_path / "x", message)


def test_a_device_as_data_is_refused(tmp_path, capsys):
    _refused(capsys, ["run", "recsys", "--data", "/dev/zero"], tmp_path / "x", "--data '/dev/zero' is a device")


def test_data_larger_than_the_lab_reads(tmp_path, capsys, monkeypatch):
    from adamkit.lab.tasks import base, recsys, text

    monkeypatch.setattr(base, "MAX_DATA_BYTES", 1 << 20)
    recsys.ratings.cache_clear()
    text.corpus.cache_clear()
    data = tmp_path / "big.txt"
    data.write_text("x" * ((1 << 20) + 1))
    _refused(capsys, ["run", "text", "--data", str(data)], tmp_path / "x", "is larger than 1 MiB")
