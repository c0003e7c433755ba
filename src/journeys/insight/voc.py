"""Voice of the customer: the sentiment and keywords of one survey comment (Korean or English).

Everything runs offline from installed packages:

- **Korean**: ``kiwipiepy`` tokenizes (its model ships in ``kiwipiepy_model``); the sentiment is
  the sum of the polarities of the lemmas in ``data/ko_polarity.tsv`` (written for this project,
  see its header) with rules for negation (안/못 before a verb, -지 않다/못하다 after it, 없다
  after a noun, the prefixes 불-/무-/비-/미-), intensifiers (정말, 너무 …), diminishers (조금 …)
  and contrast (the clause after -지만/하지만 counts more, as in VADER's "but" rule);
- **English**: ``vaderSentiment`` (VADER, a lexicon and rule-based analyser for short social
  text) gives the compound score;
- **keywords**: YAKE over the comment (English) or over its nouns (Korean, decomposed to jamo
  so YAKE's "shorter than 3 characters is a stopword" rule does not drop two-syllable nouns);
  sentiment words are left out, so keywords name topics (배송, 포장, delivery, coupon).

The score is in [-1, 1]; -0.05 < score < 0.05 is neutral for English (VADER's own
thresholds) and -0.25 < score < 0.25 for Korean, whose lexicon scores are coarser.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

Sentiment = Literal["negative", "neutral", "positive"]

MAX_KEYWORDS = 5
EN_NEUTRAL = 0.05
KO_NEUTRAL = 0.25
KO_ALPHA = 4.0  # score = s / sqrt(s² + α), VADER's normalisation (α = 15 for its scale)

_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class Analysis:
    """What a comment says: a sentiment, its score in [-1, 1], and up to five keywords."""

    sentiment: Sentiment
    score: float
    keywords: tuple[str, ...]


def language(comment: str, locale: str | None = None) -> Literal["ko", "en"]:
    """``ko`` when the comment is mostly Hangul, ``en`` when mostly Latin letters; a comment
    with neither (emoticons only) follows ``locale``."""
    hangul, latin = len(_HANGUL.findall(comment)), len(_LATIN.findall(comment))
    if hangul or latin:
        return "ko" if hangul >= latin else "en"
    return "ko" if (locale or "").lower().startswith("ko") else "en"


def analyse(comment: str, locale: str | None = None) -> Analysis:
    """The sentiment, score and keywords of ``comment`` (``locale`` as stored for the
    customer, e.g. ``ko-KR``; the script of the text decides when they disagree)."""
    text = " ".join(comment.split())
    if not text:
        return Analysis("neutral", 0.0, ())
    if language(text, locale) == "ko":
        score, nouns = _korean(text)
        return Analysis(_label(score, KO_NEUTRAL), score, _korean_keywords(nouns))
    score = _english_score(text)
    return Analysis(_label(score, EN_NEUTRAL), score, _english_keywords(text))


def _label(score: float, band: float) -> Sentiment:
    if score >= band:
        return "positive"
    if score <= -band:
        return "negative"
    return "neutral"


# --------------------------------------------------------------------------- English


# Shop feedback words VADER's general lexicon lacks or reads otherwise (its README suggests
# extending the lexicon per domain). Mild positive values on actions that a customer expects
# to happen make their negation negative: "never answered", "not processed", "didn't work".
EN_DOMAIN = {
    "slow": -1.5,
    "late": -1.5,
    "crashing": -1.7,
    "crashes": -1.7,
    "expensive": -1.0,
    "overpriced": -1.8,
    "refund": -0.5,
    "support": 0.0,  # in feedback a topic ("support answered"), not praise
    "special": 0.0,  # "nothing special" is not positive
    "answered": 0.6,
    "replied": 0.6,
    "responded": 0.6,
    "arrived": 0.4,
    "worked": 0.6,
    "works": 0.6,
    "work": 0.4,
    "processed": 0.6,
    "refunded": 0.6,
    "fixed": 0.8,
}
_CLAUSES = re.compile(r"(?<=[.,;!?])\s+")


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(EN_DOMAIN)
    return analyzer


def _english_score(text: str) -> float:
    """The mean VADER compound of the clauses that carry a sentiment. Clause by clause, so a
    negation does not reach over a comma ("not processed, very disappointed")."""
    vader = _vader()
    scores = [vader.polarity_scores(c)["compound"] for c in _CLAUSES.split(text) if c.strip()]
    scored = [s for s in scores if s]
    return round(sum(scored) / len(scored), 4) if scored else 0.0


def _yake(text: str, language_code: str) -> list[str]:
    import yake

    extractor = yake.KeywordExtractor(lan=language_code, n=2, top=MAX_KEYWORDS * 3)
    return [keyword for keyword, _score in extractor.extract_keywords(text)]


def _english_keywords(text: str) -> tuple[str, ...]:
    lexicon = _vader().lexicon
    out: list[str] = []
    for keyword in _yake(text, "en"):
        # "great coupon" → "coupon": keywords name topics, the sentiment is scored apart.
        topic = " ".join(w for w in keyword.lower().split() if abs(lexicon.get(w, 0.0)) < 1.0)
        if topic and topic not in out:
            out.append(topic)
    return tuple(out[:MAX_KEYWORDS])


# --------------------------------------------------------------------------- Korean

_NOUN_TAGS = {"NNG", "NNP", "SL", "XR"}
_CONTENT_TAGS = {"NNG", "NNP", "XR", "VA", "VV", "VX", "MAG", "SW", "IC", "SL", "XPN"}
_NEGATORS = {"안", "못"}
_NEGATING_PREFIXES = {"불", "무", "비", "미"}
_AFTER_NOUN_NEGATORS = {"없", "없이"}
_INTENSIFIERS = {
    "너무",
    "정말",
    "진짜",
    "매우",
    "아주",
    "완전",
    "엄청",
    "굉장히",
    "참",
    "되게",
    "무척",
    "너무너무",
    "정말로",
    "진짜로",
    "항상",
    "늘",
}
_DIMINISHERS = {"조금", "좀", "약간", "다소", "살짝"}
_CONTRAST_ENDINGS = {"지만", "는데", "ㄴ데", "은데"}
_CONTRAST_WORDS = {"하지만", "그런데", "그러나", "근데", "그래도"}
_NOUN_STOPWORDS = {"것", "수", "등", "때", "번", "거", "저", "제", "이", "그", "데", "점", "중"}
_FLIP = -0.8  # a negated polarity keeps most of its strength, reversed (VADER: -0.74)
_BOOST, _DAMP = 1.5, 0.6


@cache
def _kiwi() -> Any:
    from kiwipiepy import Kiwi

    return Kiwi()


@cache
def _lexicon() -> dict[str, float]:
    """``data/ko_polarity.tsv``: lemma (or two lemmas with a space) → polarity."""
    entries: dict[str, float] = {}
    text = resources.files("journeys.insight").joinpath("data/ko_polarity.tsv").read_text("utf-8")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        form, value, *_gloss = line.split("\t")
        entries[form] = float(value)
    return entries


def _tokens(text: str) -> list[tuple[str, str]]:
    """(lemma, tag) pairs; crying/laughing jamo runs are folded to ㅠㅠ/ㅎㅎ/ㅋㅋ."""
    out: list[tuple[str, str]] = []
    for token in _kiwi().tokenize(text):
        form, tag = token.form, token.tag.split("-")[0]
        if set(form) <= set("ㅠㅜ"):
            form = "ㅠㅠ"
        elif set(form) <= {"ㅎ"}:
            form = "ㅎㅎ"
        elif set(form) <= {"ㅋ"}:
            form = "ㅋㅋ"
        out.append((form, tag))
    return out


def _korean(text: str) -> tuple[float, list[list[str]]]:
    """The normalised polarity of ``text`` and its noun runs (for keywords)."""
    lexicon = _lexicon()
    tokens = _tokens(text)
    content = [(i, form, tag) for i, (form, tag) in enumerate(tokens) if tag in _CONTENT_TAGS]
    values: dict[int, float] = {}
    consumed: set[int] = set()
    # Two-word entries (마음 들, 기대 이상) first, then single lemmas.
    for (i, a, _), (j, b, _) in itertools.pairwise(content):
        value = lexicon.get(f"{a} {b}")
        if value is not None and i not in consumed:
            values[i] = value
            consumed.update((i, j))
    for i, form, tag in content:
        if i not in consumed and tag != "XPN" and form in lexicon:
            values[i] = lexicon[form]
    _apply_rules(tokens, content, values, consumed)
    # Contrast: what follows -지만/하지만 counts more than what precedes it.
    pivot = next(
        (
            i
            for i, (form, tag) in enumerate(tokens)
            if (tag == "EC" and form in _CONTRAST_ENDINGS) or form in _CONTRAST_WORDS
        ),
        None,
    )
    total = 0.0
    for i, value in values.items():
        if pivot is not None:
            value *= _DAMP if i < pivot else _BOOST
        total += value
    score = round(total / math.sqrt(total * total + KO_ALPHA), 4)
    return score, _noun_runs(tokens, lexicon)


def _apply_rules(
    tokens: list[tuple[str, str]],
    content: list[tuple[int, str, str]],
    values: dict[int, float],
    consumed: set[int],
) -> None:
    """Negation, prefixes and intensity, in place on ``values`` (token index → polarity)."""
    for k, (i, form, tag) in enumerate(content):
        following = content[k + 1] if k + 1 < len(content) else None
        previous = content[k - 1] if k else None
        if tag == "MAG" and form in _NEGATORS and following:
            j, _f, next_tag = following
            if j in values:
                values[j] *= _FLIP
            elif next_tag in ("VV", "VA"):
                values[j] = -1.0  # 안 와요, 못 받았어요: something did not happen
        elif tag == "MAG" and form in (_INTENSIFIERS | _DIMINISHERS) and following:
            j = following[0]
            if j in values:
                values[j] *= _BOOST if form in _INTENSIFIERS else _DAMP
        elif tag == "XPN" and form in _NEGATING_PREFIXES and following:
            j = following[0]
            if j in values and values[j] > 0:
                values[j] *= _FLIP  # 불친절 is not in the lexicon as one word: flip 친절
        elif tag == "VX" and form in ("않", "못하") and i >= 2 and tokens[i - 1][0] == "지":
            j = next((c[0] for c in reversed(content[:k]) if c[0] < i), None)
            if j is not None and j in values:
                values[j] *= _FLIP
            elif j is not None:
                values[j] = -1.0
        elif form in _AFTER_NOUN_NEGATORS and previous and previous[2] in _NOUN_TAGS:
            j = previous[0]
            if j in consumed:
                continue
            if j in values:
                values[j] *= _FLIP  # 문제 없이, 불만 없어요: the absence of a bad thing
            else:
                values[i] = -0.5  # 연락이 없다: something missing


def _noun_runs(tokens: list[tuple[str, str]], lexicon: dict[str, float]) -> list[list[str]]:
    """Runs of consecutive nouns (고객 센터), without sentiment nouns and stopwords."""
    runs: list[list[str]] = [[]]
    for form, tag in tokens:
        keep = tag in _NOUN_TAGS and form not in _NOUN_STOPWORDS and form not in lexicon
        if keep and (tag != "SL" or len(form) > 1):
            runs[-1].append(form.lower() if tag == "SL" else form)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _korean_keywords(runs: list[list[str]]) -> tuple[str, ...]:
    if not runs:
        return ()
    # YAKE treats words shorter than 3 characters as stopwords; in jamo (NFD) a two-syllable
    # noun is 4-6 characters, so Korean nouns survive, and NFC turns them back.
    text = unicodedata.normalize("NFD", ". ".join(" ".join(run) for run in runs) + ".")
    found = [unicodedata.normalize("NFC", k) for k in _yake(text, "ko")]
    if not found:  # one-syllable nouns only (맛, 양): YAKE keeps none
        found = [" ".join(run) for run in runs]
    out: list[str] = []
    for keyword in found:
        if keyword not in out:
            out.append(keyword)
    return tuple(out[:MAX_KEYWORDS])


def analyse_stored(db: Any, *, limit: int | None = None) -> int:
    """Analyse the stored survey comments that have not been analysed yet; returns how many
    (``journeys report`` runs this first, so answers stored before analysis existed count)."""
    from journeys.store.voc import analyse_pending

    return analyse_pending(db, analyse, limit=limit)


_WARMING = threading.Lock()


def warm_up() -> None:
    """Load the Korean model and the lexicons now (a few seconds, once per process) instead of
    on the first comment (a second caller waits for the first instead of loading them again).

    The processes of journeys do not call it at start: a load of several seconds there would
    delay Ctrl-C and the first requests, so the first Korean comment of a process pays it."""
    with _WARMING:
        _lexicon()
        _vader()
        _tokens("준비")
