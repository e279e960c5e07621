"""The console: progress lines where no terminal is attached (CI and Ray Job logs), training lines."""

from __future__ import annotations


def test_progress_lines_come_at_a_bounded_rate_with_rate_and_eta():
    import io

    from restorebench.report.console import ProgressLines

    now = [0.0]
    out = io.StringIO()
    lines = ProgressLines(every_s=10, step=0.25, stream=out, clock=lambda: now[0])
    lines(0, 100, 0)  # the start (e.g. what a resume found)
    for done in range(1, 101):
        now[0] = done * 0.5  # 2 units/s
        lines(done, 100, done // 50)
    printed = out.getvalue().splitlines()
    # the first call, then every 20 units (10 s at 2 units/s or 25 % of 100: whichever comes first), and the end
    assert [p.split()[1] for p in printed] == ["0/100", "20/100", "40/100", "60/100", "80/100", "100/100"]
    assert printed[2] == "units 40/100 (40%), 0 failed, 2 units/s, 20s elapsed, ETA 30s"
    assert printed[-1] == "units 100/100 (100%), 2 failed, 2 units/s, 50s elapsed"


def test_training_lines_say_step_loss_psnr_and_eta():
    from restorebench.report.console import training_line

    record = {"loss": 0.01234, "hole": 0.5, "val_psnr": 22.194, "lr": 2e-4, "seconds": 600.0}
    assert training_line(500, 6000, record) == (
        "step 500/6000: loss 0.01234, hole 0.5, val_psnr 22.19 dB, lr 0.0002, 10m00s elapsed, ETA 1h50m"
    )


def test_training_prints_between_validations_at_a_bounded_rate():
    import io

    from restorebench.report.console import TrainingLines

    now = [0.0]
    out = io.StringIO()
    lines = TrainingLines(100, every_s=20, step=0.5, stream=out, clock=lambda: now[0])
    for step in range(1, 101):
        now[0] = float(step)  # 1 step/s
        if step == 50:  # a validation, and its line, at step 50
            lines.validation(step, {"loss": 0.2, "val_psnr": 21.5, "lr": 1e-3, "seconds": now[0]})
        lines.step(step, loss=1.0 if step <= 21 else 0.5, elapsed=now[0])
    printed = out.getvalue().splitlines()
    # the first step, then every 20 s (before 50 % of the steps), the validation's line instead of
    # a step line at 50, and the end
    assert [p.split()[1].rstrip(":") for p in printed] == [
        "1/100",
        "21/100",
        "41/100",
        "50/100",
        "61/100",
        "81/100",
        "100/100",
    ]
    assert printed[1] == "step 21/100 (21%): loss 1, 1 steps/s, 21s elapsed, ETA 1m19s"  # the mean over steps 2-21
    assert printed[3].startswith("step 50/100: loss 0.2, val_psnr 21.50 dB")
    assert printed[4] == "step 61/100 (61%): loss 0.5, 1 steps/s, val_psnr 21.50 dB, 1m01s elapsed, ETA 39s"
    assert printed[-1] == "step 100/100 (100%): loss 0.5, 1 steps/s, val_psnr 21.50 dB, 1m40s elapsed"
