//! One-shot listening (`Listen(timeout_ms)`): the callers waiting for the
//! next utterance. The D-Bus method adds a waiter and awaits its answer; the
//! event loop gives every waiter the next utterance that starts after it was
//! added, and answers it with that utterance's transcript or drop. No lock is
//! held while anyone waits: the method awaits a oneshot channel.

use tokio::sync::oneshot;

use crate::event::DropReason;

/// Callers that may wait at once (each is a pending D-Bus call); more are
/// refused as busy.
pub const MAX_WAITING: usize = 256;

/// Why a `Listen` returns no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unheard {
    /// The utterance it took was dropped, for this reason.
    Dropped(DropReason),
    /// sottod stopped (or its input ended) first.
    Stopped,
}

/// What a waiter gets: the utterance's id and text, or why not.
pub type Answer = Result<(u64, String), Unheard>;

struct Waiter {
    token: u64,
    /// The utterance it took, once one started.
    id: Option<u64>,
    reply: oneshot::Sender<Answer>,
}

/// The waiting callers, shared by the D-Bus object and the event loop.
#[derive(Default)]
pub struct Listeners {
    next_token: u64,
    waiting: Vec<Waiter>,
}

/// A waiter's handle: its token (to give up) and where its answer comes.
pub struct Ticket {
    pub token: u64,
    pub answer: oneshot::Receiver<Answer>,
}

impl Listeners {
    /// A new waiter for the next utterance that starts; `None` when
    /// [`MAX_WAITING`] already wait.
    pub fn add(&mut self) -> Option<Ticket> {
        if self.waiting.len() >= MAX_WAITING {
            return None;
        }
        let (reply, answer) = oneshot::channel();
        self.next_token += 1;
        let token = self.next_token;
        self.waiting.push(Waiter {
            token,
            id: None,
            reply,
        });
        Some(Ticket { token, answer })
    }

    /// The waiter's time is up: removes it if no utterance has started for
    /// it (`true`: the caller times out); one that has keeps its place and
    /// gets that utterance's answer (`false`).
    pub fn give_up(&mut self, token: u64) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|w| w.token != token || w.id.is_some());
        before != self.waiting.len()
    }

    /// Utterance `id` started: every waiter without one takes it.
    pub fn started(&mut self, id: u64) {
        for w in self.waiting.iter_mut().filter(|w| w.id.is_none()) {
            w.id = Some(id);
        }
    }

    /// Is someone waiting for utterance `id`?
    pub fn claims(&self, id: u64) -> bool {
        self.waiting.iter().any(|w| w.id == Some(id))
    }

    /// Is anyone waiting (for an utterance to start, or to end)?
    pub fn any(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Utterance `id` ended: its waiters get `answer`.
    pub fn finished(&mut self, id: u64, answer: Answer) {
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.id == Some(id));
        self.waiting = keep;
        for w in done {
            // A caller that went away meanwhile is not an error.
            let _ = w.reply.send(answer.clone());
        }
    }

    /// sottod is stopping: everyone still waiting gets `Stopped`.
    pub fn stop_all(&mut self) {
        for w in self.waiting.drain(..) {
            let _ = w.reply.send(Err(Unheard::Stopped));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_waiter_gets_the_next_utterance_that_starts() {
        let mut l = Listeners::default();
        let mut a = l.add().unwrap();
        let mut b = l.add().unwrap();
        l.started(7);
        // One added after the start waits for the next.
        let mut c = l.add().unwrap();
        assert!(l.claims(7));
        l.finished(7, Ok((7, "Stop.".into())));
        assert_eq!(a.answer.try_recv().unwrap(), Ok((7, "Stop.".into())));
        assert_eq!(b.answer.try_recv().unwrap(), Ok((7, "Stop.".into())));
        assert!(c.answer.try_recv().is_err(), "still waiting");
        l.started(8);
        l.finished(8, Err(Unheard::Dropped(DropReason::NoSpeech)));
        assert_eq!(
            c.answer.try_recv().unwrap(),
            Err(Unheard::Dropped(DropReason::NoSpeech))
        );
        assert!(!l.any());
    }

    #[test]
    fn a_waiter_times_out_only_before_its_utterance_starts() {
        let mut l = Listeners::default();
        let a = l.add().unwrap();
        assert!(l.give_up(a.token), "nothing started: it times out");
        assert!(!l.any());
        let mut b = l.add().unwrap();
        l.started(3);
        assert!(!l.give_up(b.token), "started: it waits for the answer");
        l.finished(3, Ok((3, "Yes.".into())));
        assert_eq!(b.answer.try_recv().unwrap(), Ok((3, "Yes.".into())));
    }

    #[test]
    fn waiters_are_bounded_and_answered_at_a_stop() {
        let mut l = Listeners::default();
        let mut tickets: Vec<Ticket> = (0..MAX_WAITING).map(|_| l.add().unwrap()).collect();
        assert!(l.add().is_none(), "one more is refused");
        l.stop_all();
        for t in &mut tickets {
            assert_eq!(t.answer.try_recv().unwrap(), Err(Unheard::Stopped));
        }
        assert!(l.add().is_some(), "room again");
    }
}
