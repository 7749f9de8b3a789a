"""Pre-registration: a study's rules are fixed, hashed and committed before the data they judge is trained.

A study's rules (its thresholds, its criteria, which checkpoint each claim reads) live in the modules its
:class:`RuleSet` names, and nowhere else. When ``toymodels reproduce`` starts training a results folder it writes
``preregistration.json`` into it (:func:`record`): the rules' content hash (SHA-256 over those modules' source), the
git commit that last changed them and whether the checkout held uncommitted changes to them at that moment. When it
judges, :func:`status` compares the rules in force with that record:

* ``pre-registered``: the folder was trained under exactly these rules, and they were committed before training
  started (git can show it: the recorded commit precedes the record's time);
* ``post hoc``: anything else: no record (a folder trained before this feature, or by ``toymodels run``), rules
  changed since, or rules that were not committed when training started.

A folder trained by another study (its record names that study) counts as pre-registered for this one when it was
recorded after this study's rules were last committed (``_shared``): the EM claims' LR1 models, read by the
dictionary-learning and polytope studies, are data those studies' rules could not have been fitted to.

:func:`enforce` turns every decisive verdict (agrees, partly, disagrees, answered) of post hoc data into ``post
hoc``, keeping the rules' word in ``by_rules``: such a verdict describes its runs, it does not test the claim, until
a confirmation run on fresh seeds under the current rules exists (``confirmation``).

Example:
    >>> rules = RuleSet("toy", ("toymodels.reproduce.verdict",))
    >>> len(rules.fingerprint())
    64
"""

from __future__ import annotations

import hashlib
import importlib
import subprocess
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from toymodels.results.safe_io import ResultsError, read_json, write_json
from toymodels.results.store import PREREGISTRATION, package_version
from toymodels.reproduce.verdict import POST_HOC, SCALE_VERDICT, Verdict

RECORD = PREREGISTRATION
PRE_REGISTERED = "pre-registered"
#: the words a verdict of post hoc data cannot carry
DECISIVE = ("agrees", "partly", "disagrees", "answered")


@dataclass(frozen=True)
class RuleSet:
    """The rules of study ``study``: the modules (dotted names) that hold its thresholds and criteria."""

    study: str
    modules: tuple[str, ...]

    def files(self) -> list[Path]:
        """The source files of the rule modules, in ``modules`` order."""
        return [Path(importlib.import_module(m).__file__ or "") for m in self.modules]

    def fingerprint(self) -> str:
        """SHA-256 over every rule module's name and source text: changes whenever a rule does."""
        digest = hashlib.sha256()
        for name, path in zip(self.modules, self.files()):
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def commit(self) -> tuple[str | None, str | None, bool]:
        """(commit, its date, committed): the last git commit that changed a rule file, its ISO date, and whether the
        files are as committed (False: uncommitted changes). (None, None, False) outside a git checkout."""
        files = [str(p) for p in self.files()]
        cwd = Path(files[0]).parent
        try:
            log = subprocess.run(["git", "log", "-1", "--format=%H %cI", "--", *files], capture_output=True,
                                 text=True, timeout=10, cwd=cwd)
            dirty = subprocess.run(["git", "status", "--porcelain", "--", *files], capture_output=True, text=True,
                                   timeout=10, cwd=cwd)
        except (OSError, subprocess.SubprocessError):
            return None, None, False
        if log.returncode != 0 or not log.stdout.strip():
            return None, None, False
        commit, date = log.stdout.split()
        return commit, date, dirty.returncode == 0 and not dirty.stdout.strip()


def record(folder: Path, rules: RuleSet) -> dict | None:
    """Write ``folder/preregistration.json`` for ``rules`` when training of ``folder`` starts (no sweep.json yet);
    a folder that already holds runs keeps whatever it has (a record written now would claim rules it was not
    trained under). Returns the record written, or None."""
    folder = Path(folder)
    if (folder / "sweep.json").exists() or (folder / RECORD).exists():
        return None
    commit, date, committed = rules.commit()
    entry = {"study": rules.study, "rules_sha256": rules.fingerprint(), "rule_modules": list(rules.modules),
             "rules_commit": commit, "rules_commit_date": date, "rules_committed": committed,
             "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"), "toymodels": package_version()}
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / RECORD, entry)
    return entry


@dataclass(frozen=True)
class Registration:
    """Whether one results folder's verdicts may decide: ``state`` is ``pre-registered`` or ``post hoc``, ``why``
    says what the record shows."""

    folder: str
    state: str
    why: str

    @property
    def ok(self) -> bool:
        return self.state == PRE_REGISTERED


def status(folder: Path, rules: RuleSet) -> Registration:
    """The registration of ``folder`` under the ``rules`` in force now (module docstring)."""
    folder = Path(folder)
    try:
        entry = read_json(folder / RECORD)
    except (ResultsError, OSError, ValueError):
        entry = None
    if not isinstance(entry, dict):
        return Registration(folder.name, "post hoc", "no pre-registration record: trained before its rules were "
                                                     "recorded, or outside toymodels reproduce")
    if entry.get("study") not in (None, rules.study):
        return _shared(folder, entry, rules)
    now = rules.fingerprint()
    if entry.get("rules_sha256") != now:
        return Registration(folder.name, "post hoc", f"the rules changed after training started (recorded "
                                                     f"{str(entry.get('rules_sha256'))[:12]}, now {now[:12]})")
    if not entry.get("rules_committed"):
        return Registration(folder.name, "post hoc", "the rules were not committed when training started")
    return Registration(folder.name, PRE_REGISTERED, f"rules {now[:12]} from commit "
                        f"{str(entry.get('rules_commit'))[:12]} ({entry.get('rules_commit_date')}), recorded "
                        f"{entry.get('recorded')} before training")


def _shared(folder: Path, entry: dict, rules: RuleSet) -> Registration:
    """A folder another study trained (e.g. the EM claims' LR1 models, which the dictionary and polytope studies
    read): pre-registered for ``rules`` when it was recorded after their last commit, under committed rules of its
    own, and ``rules`` are as committed; those rules then existed, unchanged, before its data did."""
    commit, date, committed = rules.commit()
    if not committed or date is None:
        return Registration(folder.name, "post hoc", f"the {rules.study} rules have uncommitted changes")
    if not entry.get("rules_committed") or not entry.get("recorded"):
        return Registration(folder.name, "post hoc", f"trained by {entry.get('study')} under uncommitted rules")
    if datetime.fromisoformat(date) > datetime.fromisoformat(str(entry["recorded"])):
        return Registration(folder.name, "post hoc", f"trained (recorded {entry['recorded']}) before the "
                                                     f"{rules.study} rules' last commit {commit[:12]} ({date})")
    return Registration(folder.name, PRE_REGISTERED, f"trained by {entry.get('study')} (recorded "
                        f"{entry['recorded']}) after the {rules.study} rules' commit {commit[:12]} ({date})")


@dataclass
class Ledger:
    """The folders one study run trained or read, with their registrations (``train_sweep`` adds to it)."""

    rules: RuleSet | None = None
    entries: dict[str, Registration] = field(default_factory=dict)

    def add(self, folder: Path) -> None:
        if self.rules is not None:
            self.entries[str(folder)] = status(folder, self.rules)

    def post_hoc(self) -> list[Registration]:
        return [r for r in self.entries.values() if not r.ok]

    def summary(self) -> str:
        """One line for a document: every folder pre-registered, or the ones that are not and why."""
        if self.rules is None:
            return "no rules recorded for this study"
        if not self.entries:
            return "no results folders read"
        bad = self.post_hoc()
        if not bad:
            first = next(iter(self.entries.values()))
            return (f"all {len(self.entries)} results folders were trained under the rules in force "
                    f"({first.why})")
        return (f"{len(bad)} of {len(self.entries)} results folders are post hoc: "
                + "; ".join(f"`{r.folder}`: {r.why}" for r in bad))


def enforce(verdicts: Sequence[Verdict], registrations: Iterable[Registration]) -> list[Verdict]:
    """``verdicts`` as their data's registrations allow: when any of ``registrations`` is post hoc, each decisive
    verdict becomes ``post hoc`` (its rules' word kept in ``by_rules``, the reason says why); otherwise unchanged.

    >>> v = Verdict("LR1", "lr", "agrees", "rises")
    >>> enforce([v], [Registration("LR1-quick", "post hoc", "no record")])[0].verdict
    'post hoc'
    """
    bad = [r for r in registrations if not r.ok]
    if not bad:
        return list(verdicts)
    why = "; ".join(f"{r.folder}: {r.why}" for r in bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
    out = []
    for v in verdicts:
        if v.verdict in DECISIVE:
            v = replace(v, verdict=POST_HOC, by_rules=v.verdict,
                        reason=f"post hoc ({why}): the rules alone say '{v.verdict}': {v.reason}")
        elif v.verdict != SCALE_VERDICT:
            v = replace(v, reason=f"post hoc data ({why}); {v.reason}")
        out.append(v)
    return out
