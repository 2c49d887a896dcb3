"""Progress a log can read: whole lines with done, total and ETA when the output is no terminal."""

import io

import pytest

import mnist_cnn.progress as progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_whole_lines_with_done_total_and_eta(monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)  # a line at every update
    log = io.StringIO()
    bar = progress.progress_bar(total=4, desc="faq-tpe-hyperband", unit="trial", initial=1,
                                file=log)
    for _ in range(3):
        bar.update(1)
        bar.set_postfix_str("best_val_acc=0.9800")
    progress.tqdm.write("a message between lines", file=log)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and lines[0].startswith("faq-tpe-hyperband: 1/4 trials done")
    assert "a message between lines" in lines
    assert lines[-1].startswith("faq-tpe-hyperband: 4/4 trials done, ") and "ETA" in lines[-1]
    assert lines[-1].endswith("best_val_acc=0.9800")


def test_lines_are_spaced_in_time_but_the_last_count_is_always_written():
    log = io.StringIO()  # LOG_INTERVAL is seconds: these updates all fall in the first one
    bar = progress.progress_bar(total=1000, desc="finetune seed 0", unit="batch", file=log)
    for _ in range(1000):
        bar.update(1)
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("finetune seed 0: 1000/1000 batches done")


def test_a_terminal_gets_tqdm_bar():
    bar = progress.progress_bar(total=3, desc="x", unit="run", file=Terminal())
    assert type(bar) is progress.tqdm
    bar.close()


@pytest.mark.parametrize("noun, nouns", [("run", "runs"), ("batch", "batches"),
                                         ("study", "studies"), ("day", "days")])
def test_a_log_line_counts_in_the_plural(noun, nouns):
    assert progress.plural(noun) == nouns
