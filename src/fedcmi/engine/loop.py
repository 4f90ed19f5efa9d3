"""The run loop both engines share: round after round from a start (fresh or resumed),
each round's record and checkpoint written, a checkpoint on Ctrl-C.

An engine gives the loop one function, ``step(round_idx, state, memory)``, which runs a
whole round (:func:`fedcmi.engine.rounds.run_round`: selection, attempts over the
engine's transport, review, retries, aggregation, server step, evaluation) and returns
the new global state, server memory and the round's record. The embedded engine's
transport trains the clients in this process; the Flower adapter's sends messages over
Flower's ``Grid``. Everything else about a run is here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fedcmi.core.aggregation import ServerMemory, State
from fedcmi.engine.records import RoundRecord
from fedcmi.engine.run_folder import RunWriter
from fedcmi.errors import RunInterrupted

Step = Callable[[int, State, ServerMemory], tuple[State, ServerMemory, RoundRecord]]


@dataclass
class RunState:
    """The global state and server memory after ``rounds_done`` rounds."""

    global_state: State
    memory: ServerMemory
    rounds_done: int = 0


def run_rounds(
    rounds: int,
    writer: RunWriter,
    start: RunState,
    step: Step,
    on_round: Callable[[RoundRecord], None] | None = None,
    resume_hint: str = "fedcmi run --resume",
) -> RunState:
    """Rounds ``start.rounds_done + 1`` .. ``rounds``; returns the state after the last.

    Each round's record goes to ``writer`` (which checkpoints every
    ``engine.checkpoint_every`` rounds). On Ctrl-C the state after the last recorded
    round is checkpointed and :class:`~fedcmi.errors.RunInterrupted` names the command
    that continues the run (``resume_hint`` followed by the run folder).
    """
    done = start
    try:
        for t in range(start.rounds_done, rounds):
            state, memory, record = step(t, done.global_state, done.memory)
            writer.record(record, state, memory)
            done = RunState(state, memory, t + 1)
            if on_round is not None:
                on_round(record)
    except KeyboardInterrupt:
        writer.checkpoint(done.global_state, done.rounds_done, done.memory)
        raise RunInterrupted(
            f"interrupted after round {done.rounds_done}; continue with "
            f"`{resume_hint} {writer.out}`"
        ) from None
    return done
