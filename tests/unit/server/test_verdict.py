"""Issue 22 item 4: a training or evaluation result carries the verdict: closed-book accuracy base vs
tuned per fact type, the general-ability / forgetting figures when measured (unknown otherwise),
`trust` (a result not to trust says so, and why) and `next_steps` as tool calls."""

from __future__ import annotations

from graphtune.tools.training.verdict import verdict

SUMMARY = {"probes": 68, "base_accuracy": 0.25, "tuned_accuracy": 0.9, "ended_cleanly": 0.97,
           "base_by_fact_type": {"location": 0.2, "parameters": 0.3}, "tuned_by_fact_type": {"location": 0.95,
                                                                                            "parameters": 0.85},
           "retention": {"relative_rise": 0.02},
           "examples": [{"question": "Where is `JSONDecoder` defined?", "fact_type": "location"}]}


def _tools(result: dict) -> list[str]:
    return [step["tool"] for step in result["next_steps"]]


def test_a_model_that_learned_is_trusted_with_next_steps() -> None:
    result = verdict(SUMMARY, model="json-lora", dataset="json-facts", base_model="smollm2-135m-instruct")
    assert result["accuracy"]["gain_points"] == 65.0
    assert result["accuracy"]["by_fact_type"]["location"] == {"base": 0.2, "tuned": 0.95}
    assert result["trust"]["verdict"] == "trust" and result["forgetting"] is None
    assert any("general ability" in u for u in result["trust"]["unknown"])  # not measured: said, not guessed
    assert _tools(result) == ["ask_model", "evaluate_model", "promote_model", "merge_adapter"]
    assert result["next_steps"][0]["arguments"] == {"model": "json-lora", "compare": True,
                                                    "prompt": "Where is `JSONDecoder` defined?"}


def test_no_probes_is_not_to_be_trusted() -> None:
    result = verdict(None, model="m", dataset="d", base_model="b")
    assert result["trust"]["verdict"] == "do_not_trust" and "no closed-book probes" in result["trust"]["reasons"][0]
    assert "promote_model" not in _tools(result) and "start_fine_tuning" in _tools(result)
    assert verdict({**SUMMARY, "probes": 0}, model="m")["trust"]["verdict"] == "do_not_trust"


def test_forgetting_and_no_gain_are_not_to_be_trusted() -> None:
    forgot = verdict({**SUMMARY, "forgetting": True, "general": {"base": 0.6, "tuned": 0.4, "drop_points": 20.0}},
                     model="m")
    assert forgot["trust"]["verdict"] == "do_not_trust" and forgot["forgetting"] is True
    assert forgot["general"]["drop_points"] == 20.0
    dropped = verdict({**SUMMARY, "general": {"base": 0.6, "tuned": 0.5, "drop_points": 10.0}}, model="m")
    assert dropped["forgetting"] is True  # no flag: the general drop decides
    kept = verdict({**SUMMARY, "forgetting": False, "general": {"base": 0.6, "tuned": 0.59, "drop_points": 1.0},
                    "held_out_families": {"casual": 0.8}}, model="m")
    assert kept["trust"] == {"verdict": "trust", "reasons": [], "unknown": []}
    assert kept["held_out_families"] == {"casual": 0.8}
    no_gain = verdict({**SUMMARY, "tuned_accuracy": 0.25}, model="m")
    assert no_gain["trust"]["verdict"] == "do_not_trust" and "no better than its base" in no_gain["trust"]["reasons"][0]
    rambling = verdict({**SUMMARY, "ended_cleanly": 0.2}, model="m")
    assert any("end their turn" in r for r in rambling["trust"]["reasons"])
