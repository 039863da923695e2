//! Given/when/then for aggregates: given past events, when a command arrives, then these events
//! (or this refusal).

use std::fmt::Debug;

/// An aggregate's pure functions, for the test framework.
pub struct Aggregate<S, C, E, X> {
    /// `decide`.
    pub decide: fn(&S, C) -> Result<Vec<E>, X>,
    /// `evolve`.
    pub evolve: fn(S, &E) -> S,
}

/// The state after `history`, ready for a command.
pub struct Given<S, C, E, X> {
    aggregate: Aggregate<S, C, E, X>,
    state: S,
}

/// The outcome of a command.
pub struct When<S, E, X> {
    state: S,
    evolve: fn(S, &E) -> S,
    outcome: Result<Vec<E>, X>,
}

impl<S: Default, C, E, X> Aggregate<S, C, E, X> {
    /// Folds `history` into a state.
    pub fn given(self, history: impl IntoIterator<Item = E>) -> Given<S, C, E, X> {
        let state = history
            .into_iter()
            .fold(S::default(), |state, event| (self.evolve)(state, &event));
        Given {
            aggregate: self,
            state,
        }
    }
}

impl<S, C, E, X> Given<S, C, E, X> {
    /// Runs `decide`.
    pub fn when(self, command: C) -> When<S, E, X> {
        let outcome = (self.aggregate.decide)(&self.state, command);
        When {
            state: self.state,
            evolve: self.aggregate.evolve,
            outcome,
        }
    }
}

impl<S, E: Debug + PartialEq, X: Debug> When<S, E, X> {
    /// Asserts the events, and returns the state they lead to.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = E>) -> S {
        let expected: Vec<E> = expected.into_iter().collect();
        let events = match self.outcome {
            Ok(events) => events,
            Err(e) => panic!("expected events {expected:?}, but the command was refused: {e:?}"),
        };
        assert_eq!(events, expected);
        events.iter().fold(self.state, self.evolve)
    }
}

impl<S, E: Debug, X: Debug + PartialEq> When<S, E, X> {
    /// Asserts the refusal.
    #[track_caller]
    pub fn then_refused(self, expected: X) {
        match self.outcome {
            Ok(events) => panic!("expected refusal {expected:?}, got events {events:?}"),
            Err(e) => assert_eq!(e, expected),
        }
    }
}
