"""Reading an evaluator's output: stray prints tolerated, forged lines refused."""

from __future__ import annotations

from researchgym.evaluation import last_json_object


def test_last_json_object_skips_noise_and_takes_the_last():
    text = 'warning: something\n{"a": 1}\nnot json {\n{"a": 2, "b": [1]}\ntrailing words\n'
    assert last_json_object(text) == {"a": 2, "b": [1]}


def test_token_signed_line_wins_over_later_forgeries():
    text = '{"Score": 1.0, "token": "good"}\n{"Score": 2.0}\n{"Score": 3.0, "token": "bad"}\n'
    assert last_json_object(text, "good") == {"Score": 1.0}


def test_no_signed_line_when_evaluator_signs_means_no_result():
    assert last_json_object('{"Score": 3.0, "token": "forged"}\n', "good") is None


def test_unsigned_evaluators_still_work():
    assert last_json_object('{"accuracy": 0.9}\n', "good") == {"accuracy": 0.9}
    assert last_json_object("no json at all") is None


def test_an_evaluator_may_name_the_failure_status_but_only_a_known_one():
    from researchgym.evaluation import _reported_status

    assert _reported_status({"error": "corrupt checkpoint", "status": "evaluation_error"}) == "evaluation_error"
    assert _reported_status({"error": "x", "status": "submission_not_found"}) == "submission_not_found"
    # An unknown status, a status without an error, or no result at all: MLGym's catch-all.
    assert _reported_status({"error": "x", "status": "submitted"}) == "evaluation_format_error"
    assert _reported_status({"status": "evaluation_error"}) == "evaluation_format_error"
    assert _reported_status(None) == "evaluation_format_error"
