"""One test (or a few) per rule and structural check."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_spec_support import HEAD, SETTINGS, check, codes, steps, write_template

from journeys.plan import BranchStep, DateTrigger, SurveyStep, WaitForStep, WaitStep
from journeys.settings import Settings
from journeys.spec import check_journey_text, load_journey_text
from journeys.spec.rules import JOURNEY_RULES, PROJECT_RULES
from journeys.templates import TemplateStore


def test_every_rule_is_registered() -> None:
    assert {
        "duplicate_step_ids",
        "unknown_targets",
        "unreachable_steps",
        "loops_without_wait",
        "split_weights",
        "branch_else_last",
        "expressions_compile",
        "inline_templates_compile",
        "answers_name_surveys",
        "templates_exist",
        "templates_cover_locales",
        "notify_teams_exist",
    } <= set(JOURNEY_RULES)
    assert {"unique_journey_ids", "templates_compile"} <= set(PROJECT_RULES)


def test_minimal_journey_compiles() -> None:
    plan = load_journey_text(steps("- {id: a, wait: 1h}"))
    assert plan.journey == "t" and plan.name == "t"
    assert isinstance(plan.steps[0], WaitStep) and plan.steps[0].seconds == 3600
    assert plan.steps[0].next == "end"


# ------------------------------------------------------------------ structure


def test_unknown_key_did_you_mean() -> None:
    diags = check(HEAD + "nme: x\nsteps:\n  - {id: a, wait: 1h}\n")
    assert [d.code for d in diags] == ["unknown-key"]
    assert 'did you mean "name"?' in diags[0].message
    assert (diags[0].line, diags[0].col) == (3, 1)


def test_missing_fields() -> None:
    assert codes("journey: t\nsteps:\n  - {id: a, wait: 1h}\n") == ["missing-field"]
    assert codes("journey: t\ntrigger: {event: x}\n") == ["missing-field"]
    assert codes("") == ["missing-field"]


def test_wrong_type() -> None:
    assert codes(HEAD + "exit_on: order.placed\nsteps:\n  - {id: a, wait: 1h}\n") == ["wrong-type"]
    assert codes(steps("- {id: a, send: cart}")) == ["wrong-type"]


def test_bad_value_with_choices() -> None:
    diags = check(steps("- {id: a, send: {template: x, channel: mail}}"))
    assert [d.code for d in diags] == ["bad-value"]
    assert 'did you mean "email"?' in diags[0].message and "console" in diags[0].message


def test_journey_and_step_ids() -> None:
    text = "journey: Bad Id\ntrigger: {event: x}\nsteps:\n  - {id: Big, wait: 1h}\n  - {id: end, wait: 1h}\n"  # noqa: E501
    assert codes(text) == ["bad-id", "bad-id", "bad-id"]


@pytest.mark.parametrize(
    "trigger",
    ["{}", "{event: a, date: customer.birthday}", "{evnt: a}", "{date: 'not a path'}"],
)
def test_bad_trigger(trigger: str) -> None:
    text = f"journey: t\ntrigger: {trigger}\nsteps:\n  - {{id: a, wait: 1h}}\n"
    assert codes(text) == ["bad-trigger"]


def test_unknown_step_type() -> None:
    diags = check(steps("- {id: a, sned: {template: x}}"))
    assert [d.code for d in diags] == ["unknown-step-type"]
    assert diags[0].message.startswith(
        'unknown step type "sned"; did you mean "send"? (valid: wait,'
    )


def test_ambiguous_step() -> None:
    assert codes(steps("- {id: a, wait: 1h, send: {template: x}}")) == ["ambiguous-step"]


def test_on_keys_only_where_they_mean_something() -> None:
    diags = check(steps("- {id: a, wait: 1h, on_timeout: end}"))
    assert [d.code for d in diags] == ["unknown-key"]


@pytest.mark.parametrize(
    "value", ["24", "7 days", "0h", "P1M", "true", "3651d", "99999999999999999999d"]
)
def test_bad_duration(value: str) -> None:
    assert codes(steps(f"- {{id: a, wait: {value}}}")) == ["bad-duration"]


@pytest.mark.parametrize("value", ["'25:00'", "9", "'9am'"])
def test_bad_time(value: str) -> None:
    assert codes(steps(f"- {{id: a, wait: {{until: {value}}}}}")) == ["bad-time"]


def test_bad_quiet_hours() -> None:
    assert codes(HEAD + 'quiet_hours: "09:00-09:00"\nsteps:\n  - {id: a, wait: 1h}\n') == [
        "bad-time"
    ]


def test_time_without_quotes_is_not_sexagesimal() -> None:
    plan = load_journey_text(steps("- {id: a, wait: {until: 09:30}}"))
    assert plan.steps[0].until_minutes == 570  # type: ignore[attr-defined]


@pytest.mark.parametrize("cron", ["0 10 * MON", "61 10 * * *", "a b c d e"])
def test_bad_cron(cron: str) -> None:
    text = f"journey: t\ntrigger: {{schedule: '{cron}'}}\nsteps:\n  - {{id: a, wait: 1h}}\n"
    assert codes(text) == ["bad-cron"]


def test_bad_timezone_did_you_mean() -> None:
    diags = check(HEAD + "timezone: Asia/Seul\nsteps:\n  - {id: a, wait: 1h}\n")
    assert [d.code for d in diags] == ["bad-timezone"]
    assert "Asia/Seoul" in diags[0].message


def test_unknown_stage() -> None:
    text = "journey: t\nstage: loyal\ntrigger: {stage: advocate}\nsteps:\n  - {id: a, update: {stage: vip}}\n"  # noqa: E501
    assert codes(text) == ["unknown-stage", "unknown-stage", "unknown-stage"]


# ------------------------------------------------------------------ graph rules


def test_duplicate_step_id() -> None:
    diags = check(steps("- {id: a, wait: 1h}\n- {id: a, wait: 2h}"))
    assert [d.code for d in diags] == ["duplicate-step-id"]
    assert diags[0].line == 5


def test_unknown_goto_lists_steps() -> None:
    diags = check(steps("- {id: coupon, wait: 1h, goto: coupn}"))
    assert [d.code for d in diags] == ["unknown-goto"]
    assert (
        diags[0].message
        == 'goto "coupn" is not a step; did you mean "coupon"? (steps: coupon, end)'
    )


def test_unknown_on_targets_and_arms() -> None:
    body = """\
    - id: w
      wait_for: {event: x, within: 1h}
      on_event: nope
      on_timeout: end
    - id: b
      branch: [{when: "customer.vip", goto: nada}, {goto: end}]
    - id: s
      split: [{variant: a, weight: 100, goto: zip}]
    """
    assert codes(steps(body)) == ["unknown-goto", "unknown-goto", "unknown-goto"]


def test_unreachable_step() -> None:
    diags = check(steps("- {id: a, wait: 1h, goto: end}\n- {id: b, wait: 1h}"))
    assert [d.code for d in diags] == ["unreachable-step"]
    assert '"b"' in diags[0].message


def test_loop_without_wait() -> None:
    body = """\
    - id: a
      branch: [{when: "customer.vip", goto: b}, {goto: end}]
    - id: b
      send: {template: x}
      goto: a
    """
    diags = check(steps(body))
    assert [d.code for d in diags] == ["loop-without-wait"]
    assert '"a" → "b" → "a"' in diags[0].message


def test_self_loop_without_wait() -> None:
    assert codes(steps("- {id: a, goto: a}")) == ["loop-without-wait"]


def test_loop_with_wait_is_fine() -> None:
    assert codes(steps("- {id: a, wait: 1d}\n- {id: b, send: {template: x}, goto: a}")) == []


def test_split_weights() -> None:
    diags = check(
        steps(
            "- id: s\n  split: [{variant: a, weight: 40, goto: end}, {variant: b, weight: 40, goto: end}]"  # noqa: E501
        )
    )
    assert [d.code for d in diags] == ["split-weights"]
    assert "80" in diags[0].message


def test_duplicate_variant() -> None:
    body = "- id: s\n  split: [{variant: a, weight: 50, goto: end}, {variant: a, weight: 50, goto: end}]"  # noqa: E501
    assert codes(steps(body)) == ["duplicate-variant"]


def test_branch_else_must_be_last() -> None:
    body = '- id: b\n  branch: [{goto: end}, {when: "customer.vip", goto: end}]'
    assert codes(steps(body)) == ["unreachable-case"]


def test_branch_without_else_falls_through_to_next() -> None:
    body = '- id: b\n  branch: [{when: "customer.vip", goto: c}]\n- {id: n, wait: 1h}\n- {id: c, wait: 1h}'  # noqa: E501
    plan = load_journey_text(steps(body))
    step = plan.step("b")
    assert isinstance(step, BranchStep) and step.targets() == ("c", "n")


# ------------------------------------------------------------------ expressions


def test_bad_expression_includes_jinja_message() -> None:
    diags = check(
        "journey: t\ntrigger: {event: x, when: 'event.data.total >='}\nsteps:\n  - {id: a, wait: 1h}\n"  # noqa: E501
    )
    assert [d.code for d in diags] == ["bad-expression"]
    assert "end of template" in diags[0].message


def test_unknown_name() -> None:
    diags = check(
        "journey: t\ntrigger: {event: x, when: 'costumer.vip'}\nsteps:\n  - {id: a, wait: 1h}\n"
    )
    assert [d.code for d in diags] == ["unknown-name"]
    assert 'did you mean "customer"?' in diags[0].message


def test_empty_expression() -> None:
    assert codes("journey: t\ntrigger: {event: x, when: ''}\nsteps:\n  - {id: a, wait: 1h}\n") == [
        "bad-expression"
    ]


def test_inline_templates() -> None:
    body = '- {id: a, send: {template: x, subject: "{{ customer.first_name "}}\n- {id: b, update: {set: {t: "{{ event.data.total }}"}}}'  # noqa: E501
    assert codes(steps(body)) == ["bad-expression"]


def test_inline_templates_use_only_names_they_can_see() -> None:
    """A typo in a subject or a set value is caught before it renders as an empty string; a
    subject may use the message's links, a set value may not."""
    body = """\
    - {id: a, send: {template: x, subject: "Hi {{ costumer.first_name }} {{ unsubscribe_url }}"}}
    - {id: b, update: {set: {t: "{{ customer.tier }}-{{ unsubscribe_url }}"}}}
    """
    found = [(d.code, d.message) for d in check(steps(body))]
    assert [code for code, _ in found] == ["unknown-name", "unknown-name"]
    assert "'costumer'" in found[0][1] or '"costumer"' in found[0][1]
    assert "did you mean" in found[0][1] and "customer" in found[0][1]
    assert "unsubscribe_url" in found[1][1]


def test_answers_must_name_a_survey() -> None:
    body = """\
    - id: ask
      survey: {kind: nps, template: x, within: 7d}
    - id: b
      branch:
        - {when: "answers.ask.score >= 9", goto: end}
        - {when: "answers.b.score >= 9", goto: end}
        - {when: "answers['nope'].score", goto: end}
    """
    assert codes(steps(body)) == ["unknown-answer", "unknown-answer"]


# ------------------------------------------------------------------ templates and teams


@pytest.fixture
def store(tmp_path: Path) -> TemplateStore:
    folder = tmp_path / "templates"
    write_template(folder, "welcome.html")
    write_template(folder, "welcome.ko.html")
    write_template(folder, "reminder.html")
    write_template(folder, "only.ko.html")
    write_template(folder, "regional.ko-KR.html")
    write_template(folder, "broken.html", "{% if x %}")
    return TemplateStore(folder)


def test_missing_template_did_you_mean(store: TemplateStore) -> None:
    diags = check(steps("- {id: a, send: {template: welcom}}"), store)
    assert [d.code for d in diags] == ["missing-template"]
    assert 'did you mean "welcome"?' in diags[0].message


def test_missing_template_in_empty_folder(tmp_path: Path) -> None:
    diags = check(steps("- {id: a, send: {template: x}}"), TemplateStore(tmp_path / "none"))
    assert [d.code for d in diags] == ["missing-template"]
    assert "x.html" in diags[0].message


def test_missing_locale_names_the_file(store: TemplateStore) -> None:
    diags = check(
        steps("- {id: a, send: {template: welcome}}\n- {id: b, send: {template: reminder}}"), store
    )
    assert [d.code for d in diags] == ["missing-locale"]
    assert "reminder.ko.html" in diags[0].message


def test_locale_covered_by_fallback(store: TemplateStore) -> None:
    # regional.ko-KR needs ko: welcome.ko covers it; welcome needs ko-KR: ko covers it.
    body = "- {id: a, send: {template: welcome}}\n- {id: b, send: {template: regional}}"
    diags = check(steps(body), store)
    # regional (ko-KR only) serves neither plain "ko" customers nor the default locale.
    assert [d.code for d in diags] == ["missing-locale", "missing-locale"]
    assert all(d.message.startswith('template "regional"') for d in diags)


def test_template_without_default_file(store: TemplateStore) -> None:
    diags = check(steps("- {id: a, send: {template: only}}"), store)
    assert [d.code for d in diags] == ["missing-locale"]
    assert "only.html" in diags[0].message


def test_template_error_reported_at_template_file(store: TemplateStore) -> None:
    diags = check(steps("- {id: a, send: {template: broken}}"), store)
    assert [d.code for d in diags] == ["template-error"]
    assert diags[0].path.endswith("broken.html") and diags[0].line == 4


def test_unknown_team() -> None:
    diags = check(steps("- {id: a, notify: {to: suport, template: x}}"))
    assert [d.code for d in diags] == ["unknown-team"]
    assert 'did you mean "support"?' in diags[0].message


def test_team_from_settings() -> None:
    settings = Settings(teams={"vip-desk": {"channel": "console"}})
    text = steps("- {id: a, notify: {to: vip-desk, template: x}}")
    assert check_journey_text(text, settings=settings)[1] == []


# ------------------------------------------------------------------ compile


def test_compile_everything() -> None:
    text = """\
journey: bday
name: Birthday
stage: loyalty
trigger: {date: customer.birthday, at: "10:30", offset: -3d}
re_entry: always
cooldown: 30d
exit_on: [order.placed]
goal: {event: order.placed, within: 7d}
quiet_hours: "21:00-09:00"
steps:
  - id: w
    wait_for: {event: order.placed, within: 48h}
    on_event: end
  - id: ask
    survey: {kind: csat, template: s, within: 3d}
    on_answer: done
  - {id: done, exit: converted}
"""
    plan = load_journey_text(text, settings=Settings(timezone="Asia/Seoul"))
    assert plan.trigger == DateTrigger(field="birthday", at_minutes=630, offset_seconds=-3 * 86400)
    assert plan.cooldown_seconds == 30 * 86400 and plan.quiet_hours == (1260, 540)
    assert (
        plan.timezone == "Asia/Seoul"
        and plan.goal is not None
        and plan.goal.within_seconds == 604800
    )
    w = plan.step("w")
    assert isinstance(w, WaitForStep) and (w.on_event, w.on_timeout) == ("end", "ask")
    ask = plan.step("ask")
    assert isinstance(ask, SurveyStep) and (ask.on_answer, ask.on_timeout) == ("done", "done")
    assert plan.templates == ("s",)
    assert SETTINGS.timezone == "UTC"


@pytest.mark.parametrize(
    ("topics", "hint"),
    [
        ({"offers": {}, "newsletter": {}}, '; did you mean "offers"? (topics: newsletter, offers)'),
        ({}, " (add topics: {ofers: …})"),
    ],
)
def test_a_template_topic_must_be_a_topic_of_the_project(
    tmp_path: Path, topics: dict[str, dict[str, str]], hint: str
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "deal.html").write_text(
        "---\nsubject: Deal\n# the topic of the preference page\ntopic: ofers\n---\n<p>x</p>\n",
        encoding="utf-8",
    )
    text = steps("- {id: a, send: {template: deal}}")
    store = TemplateStore(folder)
    _, diags = check_journey_text(
        text, path="j.yaml", templates=store, settings=Settings(topics=topics)
    )
    (diag,) = diags
    assert (diag.code, diag.line, diag.col) == ("unknown-topic", 4, 8)
    assert diag.path.endswith("deal.html")
    assert diag.message == 'topic "ofers" is not defined under topics: in journeys.yaml' + hint
