//! Tenon's floor: the small vocabulary shared by crates that otherwise
//! know nothing of each other.
//!
//! It owns event topics and topic patterns ([`topic`]): what a well-formed
//! topic is, and the one matcher that decides whether a pattern covers a
//! topic, whether the event bus is delivering (`tenon-hooks`), the
//! permission boundary is checking what a plugin may publish
//! (`tenon-sandbox`) or a manifest is validated (`tenon-manifest`). It also
//! owns event causation ([`cause`]): the chain of events that led to an
//! event, which the bus (`tenon-hooks`) bounds and the sandbox carries from
//! the event a plugin handles to the events it publishes.
//!
//! It also owns the one "did you mean" rule ([`suggest`]): which known
//! names are close enough to an unknown one to suggest, used for hooks,
//! commands, plugin ids and the CLI's own vocabulary alike.
//!
//! It owns no behaviour beyond that: no I/O, no clock, no runtime, and it
//! never mentions WebAssembly, SQL or HTTP. It depends on no other Tenon
//! crate; `tenon-hooks`, `tenon-manifest` and `tenon-sandbox` depend on it.

pub mod cause;
pub mod suggest;
pub mod topic;

pub use cause::{Causation, CauseLink};
pub use suggest::similar;
pub use topic::{MAX_TOPIC_LEN, TopicError, TopicPattern, check_topic, topic_matches};
