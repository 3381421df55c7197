//! [`CommandRegistry`]: request/response calls to `plugin-id:command`, JSON in
//! and out, under a timeout.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::runtime::Handle;

use crate::spec::duration_ms;
use crate::util::{CatchUnwind, Ms, panic_message};
use crate::{BoxFuture, HandlerError};
use tenon_types::similar;

/// A command's timeout when it was registered without one.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The code behind a command.
pub trait CommandHandler: Send + Sync + 'static {
    /// Serves one request.
    fn call(&self, input: Value) -> BoxFuture<'_, Result<Value, HandlerError>>;
}

/// A command from a closure (see [`command_fn`]).
#[derive(Clone)]
pub struct FnCommand<F> {
    f: F,
}

/// A command handler from a closure returning a future.
///
/// ```
/// use tenon_hooks::command_fn;
/// use serde_json::json;
///
/// let echo = command_fn(|input| async move { Ok(json!({"echo": input})) });
/// # let _ = echo;
/// ```
pub fn command_fn<F, Fut>(f: F) -> Arc<FnCommand<F>>
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, HandlerError>> + Send + 'static,
{
    Arc::new(FnCommand { f })
}

impl<F, Fut> CommandHandler for FnCommand<F>
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, HandlerError>> + Send + 'static,
{
    fn call(&self, input: Value) -> BoxFuture<'_, Result<Value, HandlerError>> {
        Box::pin((self.f)(input))
    }
}

/// A failed command registration or call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The name is not `plugin-id:command`.
    #[error("`{name}` is not a command name: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// No command has this name.
    #[error("unknown command `{name}`{}", describe_suggestions(suggestions, *registered))]
    UnknownCommand {
        /// The name asked for.
        name: String,
        /// Registered commands close to it, closest first.
        suggestions: Vec<String>,
        /// How many commands are registered.
        registered: usize,
    },
    /// The name is taken.
    #[error("command `{name}` is already registered; unregister it first")]
    AlreadyRegistered {
        /// The name.
        name: String,
    },
    /// The command did not answer in time.
    #[error("command `{name}` did not answer within {}", Ms(*timeout))]
    Timeout {
        /// The command.
        name: String,
        /// The time it had.
        timeout: Duration,
    },
    /// The command answered with an error (or panicked).
    #[error("command `{name}` failed: {message}")]
    Failed {
        /// The command.
        name: String,
        /// What it said.
        message: String,
    },
    /// The call was made outside a Tokio runtime, so it could not be timed.
    #[error(
        "command `{name}` was called outside a Tokio runtime; call it from within one (with time enabled)"
    )]
    NoRuntime {
        /// The command.
        name: String,
    },
}

fn describe_suggestions(suggestions: &[String], registered: usize) -> String {
    match suggestions {
        [] if registered == 0 => " (no command is registered)".to_owned(),
        [] => format!(" (none of the {registered} registered commands has a similar name)"),
        [only] => format!("; did you mean `{only}`?"),
        [first, rest @ ..] => {
            let rest: Vec<_> = rest.iter().map(|s| format!("`{s}`")).collect();
            format!("; did you mean `{first}` (or {})?", rest.join(", "))
        }
    }
}

/// A registered command as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInfo {
    /// `plugin-id:command`.
    pub name: String,
    /// The plugin serving it.
    pub plugin: String,
    /// The command's name within the plugin.
    pub command: String,
    /// Its timeout, as `timeout_ms`.
    #[serde(rename = "timeout_ms", with = "duration_ms")]
    pub timeout: Duration,
}

struct CommandEntry {
    info: CommandInfo,
    handler: Arc<dyn CommandHandler>,
}

/// Commands by `plugin-id:command` name. Cheap to clone (clones share it).
///
/// ```
/// use tenon_hooks::{command_fn, CommandRegistry};
/// use serde_json::json;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let commands = CommandRegistry::new();
/// commands.register("acme.math", "double", command_fn(|n| async move {
///     Ok(json!(n.as_i64().unwrap_or(0) * 2))
/// }))?;
/// assert_eq!(commands.call("acme.math:double", json!(21)).await?, json!(42));
/// let err = commands.call("acme.math:dubble", json!(1)).await.unwrap_err();
/// assert!(err.to_string().contains("did you mean `acme.math:double`?"));
/// # Ok::<(), tenon_hooks::CommandError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct CommandRegistry {
    commands: Arc<RwLock<BTreeMap<String, Arc<CommandEntry>>>>,
}

impl Default for CommandRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CommandRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandRegistry")
            .field("commands", &self.names())
            .finish()
    }
}

fn check_part(name: &str, part: &str, what: &str) -> Result<(), CommandError> {
    let reason = if part.is_empty() {
        format!("the {what} is empty")
    } else if part.contains(':') {
        format!("the {what} `{part}` contains `:`")
    } else if part.chars().any(|c| c.is_whitespace() || c.is_control()) {
        format!("the {what} `{part}` contains whitespace")
    } else {
        return Ok(());
    };
    Err(CommandError::InvalidName {
        name: name.to_owned(),
        reason: format!("{reason}; expected `plugin-id:command`"),
    })
}

impl CommandRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            commands: Arc::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<CommandEntry>>> {
        self.commands.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<CommandEntry>>> {
        self.commands
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `plugin:command` with the [`DEFAULT_COMMAND_TIMEOUT`];
    /// returns the full name.
    pub fn register(
        &self,
        plugin: &str,
        command: &str,
        handler: Arc<dyn CommandHandler>,
    ) -> Result<String, CommandError> {
        self.register_with_timeout(plugin, command, handler, DEFAULT_COMMAND_TIMEOUT)
    }

    /// Registers `plugin:command` with its own timeout.
    pub fn register_with_timeout(
        &self,
        plugin: &str,
        command: &str,
        handler: Arc<dyn CommandHandler>,
        timeout: Duration,
    ) -> Result<String, CommandError> {
        let name = format!("{plugin}:{command}");
        check_part(&name, plugin, "plugin id")?;
        check_part(&name, command, "command")?;
        if timeout.is_zero() {
            return Err(CommandError::InvalidName {
                name,
                reason: "its timeout is 0; give it at least 1 ms".to_owned(),
            });
        }
        let mut commands = self.write();
        if commands.contains_key(&name) {
            return Err(CommandError::AlreadyRegistered { name });
        }
        let info = CommandInfo {
            name: name.clone(),
            plugin: plugin.to_owned(),
            command: command.to_owned(),
            timeout,
        };
        commands.insert(name.clone(), Arc::new(CommandEntry { info, handler }));
        Ok(name)
    }

    /// Removes one command; returns whether it was there.
    pub fn unregister(&self, name: &str) -> bool {
        self.write().remove(name).is_some()
    }

    /// Removes every command of `plugin`; returns how many there were.
    pub fn unregister_plugin(&self, plugin: &str) -> usize {
        let mut commands = self.write();
        let before = commands.len();
        commands.retain(|_, entry| entry.info.plugin != plugin);
        before - commands.len()
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Every registered command, sorted by name.
    pub fn list(&self) -> Vec<CommandInfo> {
        self.read().values().map(|e| e.info.clone()).collect()
    }

    /// Calls `name` (`plugin-id:command`) under its own timeout.
    pub async fn call(&self, name: &str, input: Value) -> Result<Value, CommandError> {
        let entry = self.entry(name)?;
        let timeout = entry.info.timeout;
        Self::run(&entry, input, timeout).await
    }

    /// Calls `name` under `timeout` instead of its own.
    pub async fn call_with_timeout(
        &self,
        name: &str,
        input: Value,
        timeout: Duration,
    ) -> Result<Value, CommandError> {
        let entry = self.entry(name)?;
        Self::run(&entry, input, timeout).await
    }

    fn entry(&self, name: &str) -> Result<Arc<CommandEntry>, CommandError> {
        let commands = self.read();
        if let Some(entry) = commands.get(name) {
            return Ok(Arc::clone(entry));
        }
        let Some((plugin, command)) = name.split_once(':') else {
            return Err(CommandError::InvalidName {
                name: name.to_owned(),
                reason: "it has no `:`; expected `plugin-id:command`".to_owned(),
            });
        };
        check_part(name, plugin, "plugin id")?;
        check_part(name, command, "command")?;
        let mut suggestions = similar(name, commands.keys().map(String::as_str));
        if suggestions.is_empty() {
            // The plugin exists but not this command: offer its commands.
            suggestions = commands
                .values()
                .filter(|e| e.info.plugin == plugin)
                .take(3)
                .map(|e| e.info.name.clone())
                .collect();
        }
        Err(CommandError::UnknownCommand {
            name: name.to_owned(),
            suggestions,
            registered: commands.len(),
        })
    }

    async fn run(
        entry: &CommandEntry,
        input: Value,
        timeout: Duration,
    ) -> Result<Value, CommandError> {
        let name = || entry.info.name.clone();
        if Handle::try_current().is_err() {
            return Err(CommandError::NoRuntime { name: name() });
        }
        let call = match catch_unwind(AssertUnwindSafe(|| entry.handler.call(input))) {
            Ok(call) => CatchUnwind(call),
            Err(payload) => {
                return Err(CommandError::Failed {
                    name: name(),
                    message: panic_message(&*payload),
                });
            }
        };
        match tokio::time::timeout(timeout, call).await {
            Err(_) => Err(CommandError::Timeout {
                name: name(),
                timeout,
            }),
            Ok(Err(panic)) => Err(CommandError::Failed {
                name: name(),
                message: panic,
            }),
            Ok(Ok(Err(error))) => Err(CommandError::Failed {
                name: name(),
                message: error.message().to_owned(),
            }),
            Ok(Ok(Ok(output))) => Ok(output),
        }
    }
}
