"""An organization's policies compiled once, indexed, and decided without evaluating most of them.

`authorizer.authorize_steps` evaluates every policy for every request by walking its AST: the
reference, and the specification. `PolicySet` is built once per set of policies (the service
caches it per organization) and gives the same `Decision` (outcome, reasons, and every policy's
`PolicyEvaluation`, in order) much faster, in three ways:

1. **Compiled.** Each expression is compiled into closures (`strongroom.policy.compiled`) with
   exactly the reference's values, errors and step charges.

2. **Indexed, with a proof for every policy left out.** A policy whose condition is a top-level
   conjunction with a *key* conjunct — `P == 'literal'` or `P.contains('literal')` /
   `'literal' in P` on a path `P` from a root keyword (`activity.type`, `activity.resource`,
   `private_key.id`, `private_key.tags`, `eth.tx.to`, ...) — is filed under `P`. For a request,
   one look-up per indexed path finds the policies whose key is *false* (the value at `P` is
   another string, or null, or a list of strings without the literal). Those are not evaluated
   when a *certificate*, checked for this request, proves what the reference would report:
   - the policy has no time gate;
   - its condition lies in a fragment (paths, literals, `==`, `!=`, `<`..., `&&`, `||`, `!`,
     `.count()`, `.contains`/`in` on a path's list or a literal list) whose evaluation cannot
     fail once every path it reads resolves to a value of the right kind — the certificate's
     `requirements`, checked once per request and shared by the policies of the same shape;
     resolving every path also means every namespace the policy reads is present (applicable);
   - its cost in steps is then exact: a constant plus the lengths of the lists it searches;
   - its consensus evaluates without error at a known cost (the consensus memo, below);
   - condition plus consensus cost fit in `POLICY_STEPS`.
   A false conjunct of a conjunction whose operands are all error-free bools makes the condition
   false, so the reference's outcome is `OUTCOME_DENY_IMPLICIT` (no error, no `not_applicable`),
   whatever the effect and the consensus, and it takes exactly that many steps from the
   decision's budget. Everything else — no key, a key that is true or whose path holds something
   else, a requirement not met — is evaluated in full, in policy order. Skipping needs the
   decision's budget to cover `POLICY_STEPS` for every policy (then no policy's allowance depends
   on the order of evaluation); otherwise every policy is evaluated, in order, as the reference.

3. **Consensus memo.** A consensus is a pure function of `approvers`, `credentials` and (when it
   reads `time`) `now_ms`. Results are kept per consensus environment (its content, frozen into a
   hashable key), for consensus expressions that do not read `time`: the value and the steps
   taken when it succeeds. A memoised result is used only when its cost fits in what the policy
   has left (budget exhaustion is then impossible); errors are never memoised, they are
   re-evaluated in place so that their message and budget effect are the reference's.

`tests/unit/policy/test_policy_compiled.py` checks all of this against the reference on random
policies, environments and budgets (hypothesis).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from strongroom.policy import ast
from strongroom.policy.compiled import Compiled
from strongroom.policy.errors import PolicyEvalError
from strongroom.policy.evaluator import Budget, _is_int
from strongroom.policy.model import Effect, Policy, PolicyEvaluation, PolicyOutcome
from strongroom.policy.namespaces import Path, referenced_paths

POLICY_STEPS: Final = 2_000
"""Steps one policy's evaluation (time, condition and consensus) may take (`authorizer` re-exports it)."""
_MEMO_ENVS: Final = 64  # consensus environments remembered per policy set
_SUBJECTS: Final = 256  # subject labels whose skipped evaluations are kept
_MISSING: Final = object()
_TRUE: Final = (True, 0)  # an absent field: true, no step


def _describe_error(field: str, err: PolicyEvalError) -> str:
    where = f" at line {err.line}, column {err.column}" if err.line else ""
    return f"{field}{where}: {err.reason}"


def _present(path: Path, env: Mapping[str, object]) -> bool:
    """`namespaces._present` (a `dict` checked first: `isinstance` against an ABC is slow)."""
    current: object = env
    for name in path:
        if type(current) is not dict and not isinstance(current, Mapping):
            return False
        if name not in current:
            return False
        current = current[name]
    return True


def _first_missing(reads: Sequence[Path], env: Mapping[str, object]) -> Path | None:
    """`namespaces.first_missing` over reads already sorted and without `time`."""
    for path in reads:
        if not _present(path, env):
            return path
    return None


def _resolve(path: Path, env: Mapping[str, object], now_ms: int) -> object:
    """The value at `path` as a top-level evaluation reads it without error, or `_MISSING`.

    Only dictionaries are walked (a list's `.count` or a missing field is `_MISSING`), so a path
    that resolves is read by the evaluator without error, and every namespace on it is present.
    """
    root = path[0]
    current: object
    if root == "time":
        current = {"now": now_ms}
    elif root in env:
        current = env[root]
    else:
        return _MISSING
    for name in path[1:]:
        if not isinstance(current, dict) or name not in current:
            return _MISSING
        current = current[name]
    return current


# -- the static analysis behind a certificate -----------------------------------------------------

_KINDS: Final = {ast.StrLit: "str", ast.IntLit: "int", ast.BoolLit: "bool"}


def _is_kind(kind: str, v: object) -> bool:
    if kind == "str":
        return isinstance(v, str)
    if kind == "int":
        return _is_int(v)
    return isinstance(v, bool)


def _check(kind: str, v: object) -> bool:
    """Whether a value satisfies a requirement kind (see `_Analysis`)."""
    if v is _MISSING:
        return False
    if kind == "any":
        return True
    if kind == "list":
        return isinstance(v, list)
    if kind.startswith("eq:"):  # `==`/`!=` with a literal of that kind: same kind or null
        return v is None or _is_kind(kind[3:], v)
    if kind.startswith("list:"):  # searched for a literal of that kind
        sub = kind[5:]
        return isinstance(v, list) and all(e is None or _is_kind(sub, e) for e in v)
    return _is_kind(kind, v)  # "int" (ordering), "bool" (an operand of `&&`, `||`, `!`)


@dataclass(frozen=True, slots=True)
class _Analysis:
    """What a sub-expression is when its requirements hold: its type, its requirements, its cost.

    `kind` is "bool", "int", "str" (a value of that type, never an error), or "path" (`path`'s
    value, whatever it is). `static` steps plus the length of each list in `lens`.
    """

    kind: str
    reqs: frozenset[tuple[Path, str]]
    static: int
    lens: tuple[Path, ...] = ()
    path: Path = ()


def _chain(node: ast.Expr) -> tuple[Path, int] | None:
    """`a.b['c']` → (("a", "b", "c"), nodes evaluated), for a chain from a root keyword."""
    names: list[str] = []
    cost = 0
    current: ast.Expr = node
    while True:
        if isinstance(current, ast.Attribute):
            names.append(current.name)
            cost += 1
            current = current.obj
        elif isinstance(current, ast.Index) and isinstance(current.index, ast.StrLit):
            names.append(current.index.value)
            cost += 2
            current = current.obj
        elif isinstance(current, ast.Name):
            names.append(current.name)
            return tuple(reversed(names)), cost + 1
        else:
            return None


def _scalar(a: _Analysis) -> str | None:
    """The kind of a literal-like operand ("str", "int", "bool"), None for a path."""
    return None if a.kind == "path" else a.kind


def _boolean(a: _Analysis) -> frozenset[tuple[Path, str]] | None:
    if a.kind == "bool":
        return a.reqs
    if a.kind == "path":
        return a.reqs | {(a.path, "bool")}
    return None


def _analyze(node: ast.Expr) -> _Analysis | None:
    """The analysis of `node` (None: outside the fragment, never skipped)."""
    none: frozenset[tuple[Path, str]] = frozenset()
    if isinstance(node, ast.BoolLit | ast.IntLit | ast.StrLit):
        return _Analysis(_KINDS[type(node)], none, 1)
    if isinstance(node, ast.TimestampLit):
        return _Analysis("int", none, 1)
    if isinstance(node, ast.Attribute | ast.Index | ast.Name):
        chain = _chain(node)
        if chain is None:
            return None
        path, cost = chain
        return _Analysis("path", frozenset({(path, "any")}), cost, path=path)
    if isinstance(node, ast.Not):
        inner = _analyze(node.operand)
        reqs = None if inner is None else _boolean(inner)
        if inner is None or reqs is None:
            return None
        return _Analysis("bool", reqs, inner.static + 1, inner.lens)
    if isinstance(node, ast.BoolOp):
        left, right = _analyze(node.left), _analyze(node.right)
        if left is None or right is None:
            return None
        lreqs, rreqs = _boolean(left), _boolean(right)
        if lreqs is None or rreqs is None:
            return None
        return _Analysis("bool", lreqs | rreqs, left.static + right.static + 1, left.lens + right.lens)
    if isinstance(node, ast.Compare):
        return _compare(node)
    if isinstance(node, ast.Count):
        target = _analyze(node.target)
        if target is None or target.kind != "path":
            return None
        return _Analysis("int", target.reqs | {(target.path, "list")}, target.static + 1, target.lens)
    if isinstance(node, ast.Contains | ast.Membership):
        return _search(node)
    return None


def _compare(node: ast.Compare) -> _Analysis | None:
    left, right = _analyze(node.left), _analyze(node.right)
    if left is None or right is None:
        return None
    reqs = left.reqs | right.reqs
    cost = left.static + right.static + 1
    lens = left.lens + right.lens
    lkind, rkind = _scalar(left), _scalar(right)
    if node.op in ("==", "!="):
        if lkind is not None and rkind is not None:
            if lkind != rkind:
                return None
        elif lkind is None and rkind is None:
            return None  # two paths: their kinds are unknown
        else:
            path = left.path if lkind is None else right.path
            reqs = reqs | {(path, f"eq:{lkind or rkind}")}
        return _Analysis("bool", reqs, cost, lens)
    for side, kind in ((left, lkind), (right, rkind)):
        if kind is None:
            reqs = reqs | {(side.path, "int")}
        elif kind != "int":
            return None
    return _Analysis("bool", reqs, cost, lens)


def _search(node: ast.Contains | ast.Membership) -> _Analysis | None:
    if isinstance(node, ast.Contains):
        container_node, item_node = node.target, node.value
    else:
        container_node, item_node = node.container, node.element
    item = _analyze(item_node)
    if item is None:
        return None
    if isinstance(container_node, ast.ListLit):
        # `P in ['a', 'b']`: a literal list of literals of one kind, searched for a path's value.
        kinds = {_KINDS.get(type(i)) for i in container_node.items}
        n = len(container_node.items)
        if None in kinds or len(kinds) > 1 or item.kind != "path":
            return None
        reqs = item.reqs if not kinds else item.reqs | {(item.path, f"eq:{kinds.pop()}")}
        return _Analysis("bool", reqs, item.static + (1 + n) + n + 1, item.lens)
    container = _analyze(container_node)
    kind = _scalar(item)
    if container is None or container.kind != "path" or kind is None:
        return None
    reqs = item.reqs | container.reqs | {(container.path, f"list:{kind}")}
    return _Analysis("bool", reqs, item.static + container.static + 1, item.lens + container.lens + (container.path,))


def _conjuncts(node: ast.Expr) -> list[ast.Expr]:
    if isinstance(node, ast.BoolOp) and node.op == "&&":
        return [*_conjuncts(node.left), *_conjuncts(node.right)]
    return [node]


Key = tuple[str, Path, str]  # ("eq" | "has", path, literal)


def _keys(condition: ast.Expr) -> list[Key]:
    """The conjuncts that can file a policy in the index, in source order."""
    out: list[Key] = []
    for c in _conjuncts(condition):
        if isinstance(c, ast.Compare) and c.op == "==":
            for path_node, lit in ((c.left, c.right), (c.right, c.left)):
                chain = _chain(path_node)
                if isinstance(lit, ast.StrLit) and chain is not None:
                    out.append(("eq", chain[0], lit.value))
        elif isinstance(c, ast.Contains) and isinstance(c.value, ast.StrLit):
            chain = _chain(c.target)
            if chain is not None:
                out.append(("has", chain[0], c.value.value))
        elif isinstance(c, ast.Membership) and isinstance(c.element, ast.StrLit):
            chain = _chain(c.container)
            if chain is not None:
                out.append(("has", chain[0], c.element.value))
    return out


@dataclass(frozen=True, slots=True)
class Certificate:
    """Why a policy whose key is false can be reported without evaluation (see the module docstring)."""

    requirements: tuple[tuple[Path, str], ...]
    static: int
    lens: tuple[Path, ...]


def certificate(policy: Policy) -> Certificate | None:
    """The policy's certificate, or None when it must always be evaluated."""
    if policy.time is not None or policy.condition is None:
        return None
    a = _analyze(policy.condition)
    reqs = None if a is None else _boolean(a)
    if a is None or reqs is None:
        return None
    return Certificate(tuple(sorted(reqs)), a.static, a.lens)


# -- compiled policies -----------------------------------------------------------------------------


class ConsensusMemo:
    """Consensus results for one consensus environment: `results[i]` is policy i's (value, steps)
    or None (it failed). `base[i]` is, for a filed policy whose consensus is known to succeed (or
    that has none), its certificate's constant cost plus its consensus's: what skipping it takes
    from the budget before the lengths of the lists it searches; `ready` is the set of those i."""

    __slots__ = ("base", "ready", "results")

    def __init__(self, base: dict[int, int]) -> None:
        self.results: dict[int, tuple[bool, int] | None] = {}
        self.base = dict(base)
        self.ready = set(base)


def _plain(value: object) -> bool:
    """Whether `value` is plain data (exactly `None`, `bool`, `int`, `str`, `list`, `dict` with `str` keys)."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return True
    if t is list:
        return all(_plain(v) for v in value)  # type: ignore[attr-defined]
    if t is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())  # type: ignore[attr-defined]
    return False


def memo_key(value: object) -> str | None:
    """A key equal for two values exactly when they are equal plain data in the same order, or None.

    For plain data `repr` is injective (strings are quoted and escaped, `True` is not `1`), and a
    map's order is part of the key (it decides the order in which the evaluator visits it).
    """
    return repr(value) if _plain(value) else None


class Memo:
    """What one subject's evaluation may reuse between policies: successful results and their cost.

    `conditions` maps a shared compiled condition to (value, steps) for this request's `env`;
    `consensus` maps a policy's position to its consensus result for this consensus environment
    (None: it failed), kept across requests by the `PolicySet`. `fresh` counts the expressions
    actually evaluated (not found here), so that a caller yields only after real work.
    """

    __slots__ = ("conditions", "consensus", "fresh")

    def __init__(self, consensus: ConsensusMemo | None) -> None:
        self.conditions: dict[int, tuple[bool, int]] = {}
        self.consensus = consensus
        self.fresh = 0


class CompiledPolicy:
    """One policy, compiled; `evaluate` is `authorizer.evaluate_policy`."""

    __slots__ = (
        "condition",
        "condition_id",
        "consensus",
        "consensus_memo",
        "index",
        "outcomes",
        "policy",
        "reads",
        "static",
        "time",
    )

    def __init__(self, policy: Policy, index: int, shared: dict[str, tuple[int, Compiled]]) -> None:
        self.policy = policy
        self.index = index
        self.time = None if policy.time is None else Compiled(policy.time)
        self.condition: Compiled | None = None
        self.condition_id = -1
        if policy.condition is not None:
            # Identical conditions (same text, so same positions: `repr` shows them) share one
            # compiled expression, and one evaluation per request.
            text = repr(policy.condition)
            found = shared.get(text)
            if found is None:
                found = shared[text] = (len(shared), Compiled(policy.condition))
            self.condition_id, self.condition = found
        self.consensus = None if policy.consensus is None else Compiled(policy.consensus)
        self.reads = tuple(sorted(p for p in policy.reads if p[0] != "time"))
        self.static: int | None = None  # the certificate's constant cost, once filed in the index
        # The evaluations without error, subject or namespace, made once (they are immutable).
        self.outcomes: dict[PolicyOutcome, PolicyEvaluation] = {
            o: PolicyEvaluation(policy.policy_id, o) for o in PolicyOutcome if o is not PolicyOutcome.ERROR
        }
        self.consensus_memo = policy.consensus is not None and not any(
            p[0] == "time" for p in referenced_paths(policy.consensus)
        )

    def consensus_result(
        self, consensus_env: Mapping[str, object], now_ms: int, memo: ConsensusMemo | None
    ) -> tuple[bool, int] | None:
        """The consensus's value and cost when it succeeds within `POLICY_STEPS` (memoised), else None."""
        if self.consensus is None:
            return (True, 0)
        if memo is None or not self.consensus_memo:
            return None
        try:
            return memo.results[self.index]
        except KeyError:
            pass
        budget = Budget(POLICY_STEPS)
        result: tuple[bool, int] | None
        try:
            value = self.consensus.evaluate_bool(consensus_env, now_ms, budget)
            result = (value, POLICY_STEPS - budget.left)
        except PolicyEvalError:
            result = None
        memo.results[self.index] = result
        if result is not None and self.static is not None:
            memo.base[self.index] = self.static + result[1]
            memo.ready.add(self.index)
        return result

    def evaluate(
        self,
        env: Mapping[str, object],
        consensus_env: Mapping[str, object],
        now_ms: int,
        budget: Budget,
        memo: Memo,
        present: bool = False,
    ) -> PolicyEvaluation:
        """`authorizer.evaluate_policy(self.policy, env, consensus_env, now_ms, budget)`.

        `present`: the caller has checked that `env` has every namespace the policy reads.
        """
        mine = Budget(min(POLICY_STEPS, budget.left))
        start = mine.left
        try:
            return self._evaluate(env, consensus_env, now_ms, mine, memo, present)
        finally:
            budget.left -= start - mine.left

    def _condition(
        self, env: Mapping[str, object], now_ms: int, errors: list[str], budget: Budget, memo: Memo
    ) -> bool | None:
        if self.condition is None:
            return True
        known = memo.conditions.get(self.condition_id)
        if known is not None and known[1] <= budget.left:
            budget.left -= known[1]
            return known[0]
        before = budget.left
        memo.fresh += 1
        try:
            value = self.condition.evaluate_bool(env, now_ms, budget)
        except PolicyEvalError as err:
            errors.append(_describe_error("condition", err))
            return None
        memo.conditions[self.condition_id] = (value, before - budget.left)
        return value

    def _evaluate(
        self,
        env: Mapping[str, object],
        consensus_env: Mapping[str, object],
        now_ms: int,
        budget: Budget,
        memo: Memo,
        present: bool,
    ) -> PolicyEvaluation:
        policy = self.policy
        errors: list[str] = []
        active: bool | None = True
        if self.time is not None:
            memo.fresh += 1
            try:
                active = self.time.evaluate_bool({}, now_ms, budget)
            except PolicyEvalError as err:
                errors.append(_describe_error("time", err))
                active = None
        if active is False:
            return self.outcomes[PolicyOutcome.TIME_INACTIVE]
        missing = None if present else _first_missing(self.reads, env)
        if missing is not None and not errors:
            return not_applicable(policy, missing)
        condition = self._condition(env, now_ms, errors, budget, memo)
        consensus: bool | None = True
        if self.consensus is not None:
            if memo.consensus is None or self.index not in memo.consensus.results:
                memo.fresh += 1  # evaluated now (and memoised if it can be)
            known = self.consensus_result(consensus_env, now_ms, memo.consensus)
            if known is not None and known[1] <= budget.left:
                consensus = known[0]
                budget.left -= known[1]
            else:
                memo.fresh += 1
                try:
                    consensus = self.consensus.evaluate_bool(consensus_env, now_ms, budget)
                except PolicyEvalError as err:
                    errors.append(_describe_error("consensus", err))
                    consensus = None
        if errors or condition is None or consensus is None:
            return PolicyEvaluation(policy.policy_id, PolicyOutcome.ERROR, "; ".join(errors))
        return self.outcomes[self.outcome(condition, consensus)]

    def outcome(self, condition: bool, consensus: bool) -> PolicyOutcome:
        """The outcome once both fields evaluated without error (rule 3 of `authorizer`)."""
        if condition and consensus:
            return PolicyOutcome.ALLOW if self.policy.effect is Effect.ALLOW else PolicyOutcome.DENY_EXPLICIT
        if condition and self.policy.effect is Effect.ALLOW:
            return PolicyOutcome.REQUIRES_CONSENSUS
        return PolicyOutcome.DENY_IMPLICIT


def not_applicable(policy: Policy, missing: Path) -> PolicyEvaluation:
    """The evaluation of a policy that reads a namespace the request lacks."""
    return PolicyEvaluation(
        policy.policy_id, PolicyOutcome.DENY_IMPLICIT, not_applicable=f"the request has no `{'.'.join(missing)}`"
    )


@dataclass(frozen=True, slots=True)
class _Filed:
    """A policy in the index: its position, its certificate's shape (an id) and cost."""

    index: int
    shape: int
    static: int
    lens: tuple[Path, ...]
    compiled: CompiledPolicy


class PolicySet:
    """Policies compiled and indexed once; `steps` decides a request (see the module docstring)."""

    def __init__(self, policies: Sequence[Policy]) -> None:
        self.policies: tuple[Policy, ...] = tuple(policies)
        shared: dict[str, tuple[int, Compiled]] = {}
        self.compiled = tuple(CompiledPolicy(p, i, shared) for i, p in enumerate(self.policies))
        self._memo: dict[str, ConsensusMemo] = {}
        self._absent: dict[tuple[int, Path, str], PolicyEvaluation] = {}
        self._skipped: dict[str, list[PolicyEvaluation]] = {
            "": [PolicyEvaluation(p.policy_id, PolicyOutcome.DENY_IMPLICIT) for p in self.policies]
        }
        # Policies without a time gate, grouped by the namespaces they read: a request that lacks
        # one of them makes every policy of the group not applicable, before any evaluation.
        groups: dict[tuple[Path, ...], list[int]] = {}
        for c in self.compiled:
            if c.time is None and c.reads:
                groups.setdefault(c.reads, []).append(c.index)
        self.read_groups = tuple((reads, tuple(members)) for reads, members in groups.items())
        # Each filed policy's key: the path with the most distinct literals across the set (the
        # most selective), the first such conjunct on a tie.
        keyed: list[tuple[CompiledPolicy, Certificate, list[Key]]] = []
        literals: dict[tuple[str, Path], set[str]] = {}
        for c in self.compiled:
            cert = certificate(c.policy)
            if cert is None or c.policy.condition is None:
                continue
            keys = _keys(c.policy.condition)
            if keys:
                keyed.append((c, cert, keys))
                for form, path, lit in keys:
                    literals.setdefault((form, path), set()).add(lit)
        self.eq: dict[Path, dict[str, frozenset[int]]] = {}
        self.has: dict[Path, dict[str, frozenset[int]]] = {}
        eq_all: dict[Path, set[int]] = {}
        has_all: dict[Path, set[int]] = {}
        shapes: dict[tuple[tuple[tuple[Path, str], ...], tuple[Path, ...]], int] = {}
        members_of: dict[int, set[int]] = {}
        self._base: dict[int, int] = {}
        self.filed: dict[int, _Filed] = {}
        for c, cert, keys in keyed:
            form, path, lit = max(keys, key=lambda k: len(literals[(k[0], k[1])]))
            table, members = (self.eq, eq_all) if form == "eq" else (self.has, has_all)
            table.setdefault(path, {})
            table[path][lit] = table[path].get(lit, frozenset()) | {c.index}
            members.setdefault(path, set()).add(c.index)
            shape = shapes.setdefault((cert.requirements, cert.lens), len(shapes))
            members_of.setdefault(shape, set()).add(c.index)
            self.filed[c.index] = _Filed(c.index, shape, cert.static, cert.lens, c)
            c.static = cert.static
            if c.consensus is None:
                self._base[c.index] = cert.static
        self.shapes = tuple(shapes)
        self.shape_members = tuple(frozenset(members_of[n]) for n in range(len(shapes)))
        self.eq_all = {p: frozenset(s) for p, s in eq_all.items()}
        self.has_all = {p: frozenset(s) for p, s in has_all.items()}
        self.everything = frozenset(range(len(self.policies)))

    # -- per request ---------------------------------------------------------------------------

    def consensus_memo(self, consensus_env: Mapping[str, object]) -> ConsensusMemo | None:
        """The memo of consensus results for this consensus environment (None: not plain data)."""
        key = memo_key(consensus_env)
        if key is None:
            return None
        memo = self._memo.get(key)
        if memo is None:
            if len(self._memo) >= _MEMO_ENVS:
                self._memo.clear()
            memo = self._memo[key] = ConsensusMemo(self._base)
        return memo

    def skipped_evaluations(self, subject: str) -> list[PolicyEvaluation]:
        """Every policy's `OUTCOME_DENY_IMPLICIT` evaluation, labelled with `subject` (a copy)."""
        found = self._skipped.get(subject)
        if found is None:
            if len(self._skipped) >= _SUBJECTS:
                self._skipped = {"": self._skipped[""]}
            found = self._skipped[subject] = [replace(e, subject=subject) for e in self._skipped[""]]
        return list(found)

    def _not_applicable(self, i: int, missing: Path, subject: str) -> PolicyEvaluation:
        key = (i, missing, subject)
        found = self._absent.get(key)
        if found is None:
            if len(self._absent) >= _SUBJECTS * 16:
                self._absent.clear()
            found = not_applicable(self.policies[i], missing)
            found = self._absent[key] = replace(found, subject=subject) if subject else found
        return found

    def not_applicable(self, env: Mapping[str, object]) -> dict[int, Path]:
        """The policies without a time gate that read a namespace the request lacks (and which)."""
        out: dict[int, Path] = {}
        for reads, members in self.read_groups:
            missing = _first_missing(reads, env)
            if missing is not None:
                for i in members:
                    out[i] = missing
        return out

    def false_keys(self, env: Mapping[str, object], now_ms: int) -> set[int]:
        """The filed policies whose key conjunct is false, without error, for this request."""
        out: set[int] = set()
        for path, table in self.eq.items():
            v = _resolve(path, env, now_ms)
            if type(v) is str:
                hit = table.get(v)
                out |= self.eq_all[path] - hit if hit else self.eq_all[path]
            elif v is None:
                out |= self.eq_all[path]
        for path, table in self.has.items():
            v = _resolve(path, env, now_ms)
            if type(v) is not list:
                continue
            present = set()
            for e in v:
                if type(e) is str:
                    present.add(e)
                elif e is not None:
                    break
            else:
                members = set(self.has_all[path])
                for lit in present & table.keys():
                    members -= table[lit]
                out |= members
        return out

    def skippable(
        self, candidates: set[int], env: Mapping[str, object], now_ms: int, memo: ConsensusMemo | None
    ) -> tuple[set[int], int]:
        """Those of `candidates` (false keys) proven `OUTCOME_DENY_IMPLICIT`, and the steps they take.

        Only a consensus already memoised counts: evaluating one here would be work done between
        two yields (the policy is evaluated in the loop instead, and its consensus memoised).
        """
        ready = candidates & (memo.ready if memo is not None else self._base.keys())
        if not ready:
            return set(), 0
        base = memo.base if memo is not None else self._base
        skipped: set[int] = set()
        steps = 0
        values: dict[Path, object] = {}
        for shape, members in enumerate(self.shape_members):
            chosen = ready & members
            if not chosen:
                continue
            requirements, lens = self.shapes[shape]
            ok = True
            for path, kind in requirements:
                v = values.get(path, _MISSING)
                if v is _MISSING:
                    v = values[path] = _resolve(path, env, now_ms)
                if not _check(kind, v):
                    ok = False
                    break
            if not ok:
                continue
            extra = 0
            for path in lens:  # lists, by the requirements just checked
                searched = values[path]
                assert isinstance(searched, list)
                extra += len(searched)
            costs = [base[i] for i in chosen]
            if max(costs) + extra > POLICY_STEPS:
                chosen = {i for i in chosen if base[i] + extra <= POLICY_STEPS}
                costs = [base[i] for i in chosen]
            skipped |= chosen
            steps += sum(costs) + extra * len(chosen)
        return skipped, steps

    def steps(
        self,
        env: Mapping[str, object],
        consensus_env: Mapping[str, object],
        now_ms: int,
        budget: Budget,
        subject: str,
    ) -> Generator[None, None, tuple[list[PolicyEvaluation], list[tuple[Policy, PolicyEvaluation]]]]:
        """Every policy's evaluation, in order; yields after each policy that evaluated an expression.

        Between two yields: the cheap bulk work (namespaces, index look-ups, certificates: no
        expression is evaluated there) and at most one policy's evaluation (at most
        `POLICY_STEPS`) plus policies settled from the memos.

        Returns every policy's evaluation, and (policy, evaluation) for the policies evaluated or
        not applicable, in order (the others are `OUTCOME_DENY_IMPLICIT`: they add nothing to the
        decision's reasons).
        """
        memo = Memo(self.consensus_memo(consensus_env))
        evaluations = self.skipped_evaluations(subject)
        # Not applicable: no time gate, so nothing is evaluated and no step is taken (any budget).
        absent = self.not_applicable(env)
        for i, missing in absent.items():
            evaluations[i] = self._not_applicable(i, missing, subject)
        settled: set[int] = set(absent)
        if budget.left >= len(self.policies) * POLICY_STEPS:
            candidates = self.false_keys(env, now_ms) - settled
            skipped, cost = self.skippable(candidates, env, now_ms, memo.consensus)
            budget.left -= cost
            settled |= skipped
        run = sorted(self.everything - settled) if settled else range(len(self.policies))
        results: list[tuple[Policy, PolicyEvaluation]] = []
        conditions = memo.conditions
        consensus = memo.consensus.results if memo.consensus is not None else {}
        for i in run:
            c = self.compiled[i]
            fresh = memo.fresh
            evaluation = None
            if c.time is None:
                # Both expressions already evaluated (another policy with this condition, this
                # consensus environment before): as `_evaluate` with both memo hits, inline.
                cond = conditions.get(c.condition_id) if c.condition is not None else _TRUE
                cons = consensus.get(i) if c.consensus is not None else _TRUE
                if cond is not None and cons is not None and cond[1] + cons[1] <= min(POLICY_STEPS, budget.left):
                    budget.left -= cond[1] + cons[1]
                    evaluation = c.outcomes[c.outcome(cond[0], cons[0])]
            if evaluation is None:
                # Without a time gate and not found absent above, every namespace it reads is present.
                evaluation = c.evaluate(env, consensus_env, now_ms, budget, memo, c.time is None)
            if subject:
                evaluation = replace(evaluation, subject=subject)
            evaluations[i] = evaluation
            results.append((c.policy, evaluation))
            if memo.fresh != fresh:
                yield
        return evaluations, results


__all__ = ["POLICY_STEPS", "Certificate", "CompiledPolicy", "Memo", "PolicySet", "certificate", "memo_key"]
