"""Answer grading shared by the RL reward and evaluation: extraction + math-verify, in bounded time.

math-verify bounds its own work with SIGALRM, which only fires in a process's main thread (TRL can
call rewards elsewhere) and cannot interrupt a C-level sympy loop. So every comparison that needs
sympy runs in a worker process with an outer timeout; a worker that overruns is killed, the item
scores 0, and a fresh pool serves the next call.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import logging
import math
import multiprocessing as mp
import os
import re
import signal
import threading

from prefix_rft.errors import GradingError
from prefix_rft.rewards.answer_forms import normalize_answer, percent_as_value

logger = logging.getLogger(__name__)

# What a grader's caller must do when the worker processes cannot start (spawn re-imports __main__).
_WORKER_HINT = (
    "grading worker processes could not start or keep dying; a script that grades answers must run its "
    "code under `if __name__ == '__main__':` (workers are started with spawn)"
)

_BOX_OPENERS = ("\\boxed{", "\\fbox{")


def _closing_brace(text: str, i: int) -> int | None:
    """Index of the ``}`` that closes a brace opened just before ``text[i]``; None when unbalanced."""
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return None


def _last_braced(text: str) -> str | None:
    starts = [(text.rfind(op), op) for op in _BOX_OPENERS]
    start, op = max(starts)
    if start < 0:
        return None
    i = start + len(op)
    j = _closing_brace(text, i)
    return None if j is None else text[i:j].strip()  # None: unbalanced


def _boxes(text: str) -> list[tuple[int, int, str]]:
    """Every balanced ``\\boxed{...}``/``\\fbox{...}`` as (start, end, content), in order (nested ones inside
    another box are part of it)."""
    out: list[tuple[int, int, str]] = []
    pos = 0
    while True:
        found = [(text.find(op, pos), op) for op in _BOX_OPENERS]
        found = [(i, op) for i, op in found if i >= 0]
        if not found:
            return out
        start, op = min(found)
        i = start + len(op)
        j = _closing_brace(text, i)
        if j is None:
            return out  # unbalanced: nothing after it is read
        out.append((start, j + 1, text[i:j].strip()))
        pos = j + 1


# Between two boxes of one final answer: separators only ("\boxed{1}, \boxed{2} and \boxed{3}").
_BOX_JOINER = re.compile(r"[\s,;$.]*(?:(?:and|or|&)[\s,;$.]*)?")


def final_boxes(text: str) -> list[str]:
    """The contents of the boxes that end ``text`` together: the last box and the boxes before it that only
    separators (commas, "and", ``$``, spaces) part from it. Empty when the text has no complete box."""
    boxes = _boxes(text)
    if not boxes:
        return []
    run = [boxes[-1]]
    for prev in reversed(boxes[:-1]):
        if not _BOX_JOINER.fullmatch(text[prev[1] : run[0][0]]):
            break
        run.insert(0, prev)
    return [content for _, _, content in run]


def extract_answer(text: str, style: str = "boxed") -> str | None:
    """The final answer in ``text``.

    ``boxed``: content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), nested braces included;
    None when absent or unbalanced. ``gsm8k``: the text after the last ``####`` with thousands
    separators removed, falling back to the last box when there is no ``####``.
    """
    if style == "gsm8k":
        if "####" in text:
            answer = (
                text.rsplit("####", 1)[1].strip().splitlines()[0] if text.rsplit("####", 1)[1].strip() else ""
            )
            answer = re.sub(r"(?<=\d),(?=\d{3})", "", answer).strip().rstrip(".")
            return answer or None
        return _last_braced(text)
    if style != "boxed":
        raise ValueError(f"answer style {style!r} is not valid; expected 'boxed' or 'gsm8k'")
    return _last_braced(text)


_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_LIST_RE = re.compile(r"^\[(.*)\]$", re.S)
_DOLLAR_RE = re.compile(r"(?<!\\)\$")  # a $ that is not an escaped \$


def normalize_gold(gold: str) -> str:
    """Undo the benchmark files' answer quirks.

    AMC floats (``"27.0"`` -> ``"27"``), answers wrapped in ``$...$`` or ``\\(...\\)`` (or several
    spans, ``"$69$,$84$"`` -> ``"69,84"``), and OlympiadBench answer lists rendered as strings
    (``"['3', '5']"`` -> ``"3, 5"``).
    """
    g = str(gold).strip()
    m = _LIST_RE.match(g)
    if m and ("'" in g or '"' in g):
        items = re.findall(r"""'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)\"""", m.group(1))
        parts = [normalize_gold((a or b).replace("\\\\", "\\")) for a, b in items]
        return ", ".join(p for p in parts if p)
    if g.startswith("$") and g.endswith("$") and not g.startswith("$$") and len(_DOLLAR_RE.findall(g)) > 2:
        # Several math spans, e.g. OlympiadBench's "$69$,$84$": drop every delimiter, keep the separators.
        return _DOLLAR_RE.sub("", g).strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if g.startswith(left) and g.endswith(right) and len(g) > len(left) + len(right) - 1:
            g = g[len(left) : len(g) - len(right)].strip()
            break
    if re.fullmatch(r"-?\d+\.0+", g):
        g = g.split(".")[0]
    return g


_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def has_several_answers(gold: str) -> bool:
    """Whether a reference answer lists several answers (``1, 2, 3``, ``{1,2,3}``, ``(1, 2)``): a comma at
    the top level of the answer, or of its one enclosing pair of brackets; ``1,000`` is one number."""
    g = gold.strip()
    if _THOUSANDS.fullmatch(g):
        return False
    if len(g) >= 2 and g[0] + g[-1] in ("{}", "()", "[]"):
        g = g[1:-1]
    elif g.startswith("\\{") and g.endswith("\\}"):
        g = g[2:-2]
    depth = 0
    for ch in g:
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        elif ch == "," and depth == 0:
            return True
    return False


def prediction(text: str, gold: str, style: str = "boxed") -> str | None:
    """What a completion answers, for a reference answer ``gold``: the last box; when ``gold`` lists several
    answers and the completion ends with several boxes (``\\boxed{1}, \\boxed{2}, \\boxed{3}``), those boxes
    joined with commas, compared as one list (so their order does not matter where math-verify treats the
    list as a set)."""
    if style == "boxed" and has_several_answers(normalize_gold(gold)):
        run = final_boxes(text)
        if len(run) > 1:
            return ", ".join(run)
    return extract_answer(text, style)


def _quick_equal(pred: str, gold: str) -> bool:
    def canon(s: str) -> str:
        return re.sub(r"\s+", "", s).rstrip(".")

    return canon(pred) == canon(gold)


def is_equivalent(pred: str, gold: str, timeout: int = 5) -> bool:
    """math-verify equivalence of two answer strings, gold first (no outer timeout: run in a worker)."""
    from math_verify import parse, verify

    gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=timeout)
    pred_parsed = parse(f"\\boxed{{{pred}}}", parsing_timeout=timeout)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))


def _exit_with_parent(parent_pid: int, interval: float = 1.0) -> None:
    """Poll for the parent: a worker whose trainer was killed (SIGTERM/SIGKILL) must not outlive it."""
    import time

    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(0)


def _worker_init(parent_pid: int | None = None) -> None:
    # Ctrl-C reaches every process of the terminal's group: the parent reports it, the workers stay quiet
    # (they end with it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    import math_verify  # noqa: F401 - pay the sympy import once per worker, not inside an item's budget


def _worker_ready() -> bool:
    return True


def _worker_grade(pred: str, gold: str, timeout: int) -> bool:
    try:
        return is_equivalent(pred, gold, timeout)
    except Exception:  # a parse/verify error is a wrong answer, never a crash of training
        return False


class Grader:
    """Scores completions against reference answers: 1.0 correct, 0.0 wrong, unparseable or timed out."""

    def __init__(
        self,
        num_workers: int = 1,
        timeout: float = 5.0,
        style: str = "boxed",
        inner_timeout: int | None = None,
        answer_forms: bool = True,
    ) -> None:
        """``timeout``: seconds an item may take (outer guard); ``inner_timeout``: math-verify's own
        alarm inside the worker (default: ``timeout``), which ends most slow items without a kill.
        ``answer_forms=False``: plain math-verify on the last box (no rewrites of
        :mod:`~prefix_rft.rewards.answer_forms`, no multi-box answers), as a baseline."""
        self.answer_forms = answer_forms
        self.num_workers, self.timeout, self.style = max(1, num_workers), timeout, style
        self.inner_timeout = inner_timeout if inner_timeout is not None else max(1, int(timeout))
        self.num_timeouts = 0
        self.startup_timeout = 120.0
        self._pool: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            # spawn: forking a process that holds torch threads (the trainer) is not safe.
            pool = cf.ProcessPoolExecutor(
                self.num_workers,
                mp_context=mp.get_context("spawn"),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
            # Start every worker now so that process start-up never eats into an item's time budget.
            try:
                for fut in [pool.submit(_worker_ready) for _ in range(self.num_workers)]:
                    fut.result(timeout=self.startup_timeout)
            except (cf.process.BrokenProcessPool, RuntimeError, cf.TimeoutError) as err:
                # Not one item's fault: without workers every answer would score 0.
                pool.shutdown(wait=False, cancel_futures=True)
                raise GradingError(f"{_WORKER_HINT} ({type(err).__name__}: {err})") from err
            self._pool = pool
        return self._pool

    def _reset_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()
            pool.shutdown(wait=False, cancel_futures=True)

    def grade(self, completion: str, gold: str) -> float:
        """Score one completion."""
        return self.grade_many([completion], [gold])[0]

    def grade_many(self, completions: list[str], golds: list[str]) -> list[float]:
        """Score many completions; the sympy comparisons run in parallel across the workers."""
        if len(completions) != len(golds):
            raise ValueError(f"{len(completions)} completions but {len(golds)} reference answers")
        scores = [0.0] * len(completions)
        pending: list[tuple[int, str, str]] = []
        for i, (text, gold) in enumerate(zip(completions, golds)):
            raw = (
                prediction(text, gold, self.style) if self.answer_forms else extract_answer(text, self.style)
            )
            if raw is None:
                continue
            raw_gold = normalize_gold(gold)
            if not self.answer_forms:
                pairs = [(raw, raw_gold)]
            else:
                # The rewritten forms, and the forms as written: the rewrites only add matches (a case
                # math-verify gets right by itself stays right).
                pred_n, gold_n = normalize_answer(raw), normalize_answer(raw_gold)
                pairs = [(pred_n, gold_n), (raw, raw_gold)]
                pred_v, gold_v = percent_as_value(raw), percent_as_value(raw_gold)
                if pred_v is not None or gold_v is not None:  # a percentage also equals its value
                    pairs.append((pred_v or pred_n, gold_v or gold_n))
                pairs = list(dict.fromkeys(pairs))
            if any(_quick_equal(p, g) for p, g in pairs):
                scores[i] = 1.0
            else:
                pending += [(i, p, g) for p, g in pairs]
        if not pending:
            return scores
        with self._lock:
            for attempt in range(2):  # a pool whose worker died is rebuilt once
                try:
                    self._grade_in_workers(pending, scores)
                    break
                except cf.process.BrokenProcessPool as err:
                    self._reset_pool()
                    if attempt:
                        # Scoring the items 0 would under-report accuracy without a word.
                        raise GradingError(f"{_WORKER_HINT} ({len(pending)} items ungraded)") from err
        return scores

    def self_grade(self, golds: list[str]) -> list[bool]:
        """Whether each reference answer, boxed as a completion, is graded correct against itself by
        math-verify itself (no string shortcut): False means no completion can ever score on it. Plain
        numbers pass at once; each distinct other answer is parsed once, in the workers."""
        normalized = [normalize_answer(normalize_gold(g)) for g in golds]
        verdict: dict[str, bool] = {}
        pending: list[tuple[int, str, str]] = []
        for text in dict.fromkeys(normalized):
            if _PLAIN_NUMBER.fullmatch(text):
                verdict[text] = True
            elif not text or extract_answer(f"\\boxed{{{text}}}", "boxed") != text:
                verdict[text] = False  # empty or unbalanced braces: no box can hold it
            else:
                pending.append((len(pending), text, text))
        if pending:
            scores = [0.0] * len(pending)
            with self._lock:
                self._grade_in_workers(pending, scores)
            verdict.update({text: score > 0 for (_, text, _), score in zip(pending, scores)})
        return [verdict[text] for text in normalized]

    def _grade_in_workers(self, pending: list[tuple[int, str, str]], scores: list[float]) -> None:
        pool = self._get_pool()
        futures = [(i, pool.submit(_worker_grade, p, g, self.inner_timeout)) for i, p, g in pending]
        # Each item gets `timeout` seconds of a worker; workers run in parallel.
        budget = self.timeout * math.ceil(len(futures) / self.num_workers) + 1.0
        done, not_done = cf.wait([f for _, f in futures], timeout=budget)
        for i, fut in futures:
            if fut in done:
                if isinstance(fut.exception(), cf.process.BrokenProcessPool):
                    raise fut.exception()
                if fut.exception() is None and fut.result():  # an item may have several pairs: any match
                    scores[i] = 1.0
        if not_done:
            self.num_timeouts += len(not_done)
            logger.warning("grading timed out on %d items; scoring them 0", len(not_done))
            self._reset_pool()

    def close(self) -> None:
        """Stop the worker processes."""
        self._reset_pool()

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_DEFAULT: Grader | None = None


def get_default_grader(timeout: float = 5.0) -> Grader:
    """A process-wide grader (created on first use, closed at exit)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Grader(num_workers=1, timeout=timeout)
        atexit.register(_DEFAULT.close)
    return _DEFAULT
