"""The master's epoch and its standby: whether it leads, whether a newer epoch superseded it, and the standby
that follows it with the state of every generation.

A master leads one epoch; a promoted standby leads one above every epoch it has seen. A peer proven to have
served a higher epoch shows that a newer master leads the run: a master that led stands down (``fenced``) and
never leads again, so that no second copy of the evolution runs; a standby, which leads nothing, refuses the
peer as a standby (non-fatally) and only remembers the epoch. At most one standby follows a master, and gets
the last state at once (unless it is larger than a frame may be).
"""

from __future__ import annotations

from neatify.distributed.core._state import Phase, Role
from neatify.distributed.core.actions import Action, Send
from neatify.distributed.core.peers import Connection, Peers, logger
from neatify.distributed.errors import SupersededError
from neatify.distributed.wire.framing import encode_frame
from neatify.distributed.wire.messages import RegistrationAck


class Fencing:
    """This master's epoch and place (``standby``: following a primary, refusing workers until ``promote``), and
    the standby following it (``follower``)."""

    def __init__(self, peers: Peers, epoch: int, standby: bool, generation: int | None = None) -> None:
        self.peers = peers
        self.epoch = epoch
        """This master's epoch: a promoted standby leads with its primary's plus one (told to every worker)."""
        self.standby = standby
        self.seen = epoch
        """The highest epoch seen (its own, or a peer's that a standby refused): a promotion leads one above it."""
        self.held = epoch
        """A standby's: the epoch of the state it holds (its checkpoint's, or the last it replicated), told to a
        standby it refuses so that the newer state leads."""
        self.generation = generation
        """The generation of the state this master holds (None: unknown): on equal epochs, a standby registering
        with a newer one leads instead."""
        self.stood_down: SupersededError | None = None
        """Set once a peer showed a higher epoch: this master serves no one any more."""
        self.follower: Connection | None = None
        """The standby following this master (at most one): it gets the state after every generation."""
        self._state_frame: bytes | None = None
        """The last STATE_SNAPSHOT frame, sent to a standby as soon as it registers."""
        self._too_large = False
        """Whether a state too large to replicate was already reported (one ERROR, not one per generation)."""

    def accepted(self) -> bytes:
        """The REGISTRATION_ACK that admits a worker or a standby."""
        return encode_frame(RegistrationAck("accepted", heartbeat_interval=self.peers.config.heartbeat_interval,
                                            epoch=self.epoch))

    def fenced(self, connection: Connection, who: str, epoch: int, actions: list[Action],
               generation: int | None = None) -> str | None:
        """An authenticated peer that has served epoch ``epoch``: above this master's, a newer master leads the
        run; the peer is refused and, if this master led, the reason to stand down returned (a standby only notes
        the epoch: it led nothing, so it has nothing to stand down from and may still be promoted). A standby
        holding ``generation`` of this master's epoch, newer than this master's state, is told to lead as well."""
        newer = self._newer_state(epoch, generation)
        if newer is not None:
            return self._yield(connection, f"{who} from {connection.address} {newer}", actions)
        if epoch <= self.epoch:
            return None
        if self.standby:
            self.seen = max(self.seen, epoch)
            self.peers.refuse(connection, f"this master on {self.peers.where} is a standby (a follower, leading no "
                              f"epoch) holding epoch {self.held}; {who} of epoch {epoch} noted", "standby", actions,
                              epoch=self.held if connection.state.role is Role.STANDBY else None)
            return None
        return self._yield(connection, f"{who} from {connection.address} has served epoch {epoch}, newer than this "
                           f"master's {self.epoch}", actions)

    def _newer_state(self, epoch: int, generation: int | None) -> str | None:
        """Why a standby's state of ``epoch`` and ``generation`` is newer than this master's of the same epoch (the
        one led, or a standby's held), if it is."""
        if generation is None or self.generation is None or epoch != (self.held if self.standby else self.epoch):
            return None
        if generation <= self.generation:
            return None
        return f"holds generation {generation} of epoch {epoch}, newer than this master's generation {self.generation}"

    def _yield(self, connection: Connection, reason: str, actions: list[Action]) -> str | None:
        """The peer holds the newer state: refused with code ``"epoch"``, which makes it lead; a master that led
        stands down (the reason returned), a standby follows it once it leads."""
        if self.standby:
            self.peers.refuse(connection, f"this master on {self.peers.where} is a standby holding an older state: "
                              f"{reason}; lead the run", "epoch", actions)
            return None
        self.peers.refuse(connection, f"this master (epoch {self.epoch}) is superseded and stands down: {reason}",
                          "epoch", actions)
        return reason

    def holds(self, epoch: int, generation: int | None = None) -> None:
        """A standby replicated a state of ``epoch`` after ``generation``: what its refusals of other standbys
        tell them, and what a standby registering with a newer state of that epoch is compared with."""
        if generation is not None and (epoch, generation) > (self.held, -1 if self.generation is None else
                                                             self.generation):
            self.generation = generation
        self.held = max(self.held, epoch)

    def reached(self, generation: int) -> None:
        """The state of this master (leading) is now after ``generation``."""
        self.generation = generation if self.generation is None else max(self.generation, generation)

    def supersede(self, reason: str) -> SupersededError:
        """Stand down for ``reason``: the error the running generation, and every later call, fails with."""
        error = SupersededError(f"master on {self.peers.where} (epoch {self.epoch}) stood down: {reason}; a newer "
                                "master leads this run, so this one does not continue a second copy of it")
        logger.error("%s", error)
        self.stood_down = error
        return error

    def follow(self, connection: Connection, actions: list[Action]) -> None:
        """Admit an authenticated standby (one at a time) and send it the last state at once."""
        if self.standby or self.follower is not None:
            why = "this master is a standby itself" if self.standby else "another standby already follows it"
            self.peers.refuse(connection, f"standby refused: {why}", "busy", actions)
            return
        connection.state.advance(Phase.REGISTERED)
        self.follower = connection
        actions.append(Send(self.accepted(), connection.id))
        if self._state_frame is not None:
            actions.append(Send(self._state_frame, connection.id))
        logger.info("standby from %s follows this master (epoch %d)", connection.address, self.epoch)

    def unfollow(self, connection: Connection, reason: str) -> None:
        """The standby on ``connection`` (if it follows) is gone."""
        if self.follower is connection:
            self.follower = None
            if not self.peers.stopping:
                logger.warning("standby from %s lost (%s)", connection.address, reason)

    def replicate(self, frame: bytes) -> list[Action]:
        """A generation was evaluated: send its STATE_SNAPSHOT ``frame`` to the standby (and to one that
        registers later), unless it exceeds the frame limit: a standby would refuse it and re-link for ever."""
        limit = self.peers.config.max_frame_bytes
        if len(frame) > limit:
            if not self._too_large:
                logger.error("not replicating the state to the standby: %d bytes, over the frame limit of %d bytes; "
                             "raise --max-frame-bytes (max_frame_bytes) on this master and its standby", len(frame),
                             limit)
            self._too_large, self._state_frame = True, None
            return []
        self._state_frame = frame
        return [] if self.follower is None else [Send(frame, self.follower.id)]

    def promotion(self, epoch: int) -> int:
        """The epoch a promotion to ``epoch`` would lead: it, or one above every epoch seen if higher."""
        return max(epoch, self.seen + 1, self.epoch + 1)

    def promote(self, epoch: int) -> int:
        """This standby's primary is gone: lead the run, accepting workers from now on, as ``promotion(epoch)``;
        the epoch it leads."""
        assert self.standby, "only a standby is promoted"
        self.standby, self.epoch = False, self.promotion(epoch)
        logger.warning("standby promoted on %s: leading the run as epoch %d", self.peers.where, self.epoch)
        return self.epoch


def resumed_epoch(saved: int | None, leader: str | None, me: str | None) -> int:
    """The epoch a master leads when it resumes a checkpoint of epoch ``saved`` led by ``leader``: the same one if
    it led it itself (or the checkpoint names no leader, as before fencing tokens), else one above it, so that two
    masters never lead one epoch (``me``: this master's leader id, None if it has no fixed one)."""
    if saved is None:
        return 1
    return saved if leader is None or (me is not None and leader == me) else saved + 1
