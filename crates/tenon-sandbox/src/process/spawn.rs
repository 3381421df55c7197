//! Starting a plugin's process: a fixed spawner thread, an empty
//! environment, no inherited descriptors, its own process group, death with
//! the host (`PR_SET_PDEATHSIG`), and the OS limits applied before `exec`.

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;

use rustix::process::{Pid, Resource, Rlimit, Signal};

/// One resource limit to apply in the child before `exec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    pub(crate) resource: LimitKind,
    pub(crate) value: u64,
}

/// The resource limits the process runtime applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitKind {
    /// `RLIMIT_AS`: address space, from `limits.memory`.
    AddressSpace,
    /// `RLIMIT_CPU`: CPU seconds.
    CpuTime,
    /// `RLIMIT_NOFILE`: open descriptors.
    OpenFiles,
    /// `RLIMIT_NPROC`: processes of the user (see `docs/process.md`).
    Processes,
    /// `RLIMIT_CORE`: no core dumps.
    CoreDump,
}

impl LimitKind {
    fn resource(self) -> Resource {
        match self {
            Self::AddressSpace => Resource::As,
            Self::CpuTime => Resource::Cpu,
            Self::OpenFiles => Resource::Nofile,
            Self::Processes => Resource::Nproc,
            Self::CoreDump => Resource::Core,
        }
    }

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::AddressSpace => "RLIMIT_AS",
            Self::CpuTime => "RLIMIT_CPU",
            Self::OpenFiles => "RLIMIT_NOFILE",
            Self::Processes => "RLIMIT_NPROC",
            Self::CoreDump => "RLIMIT_CORE",
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub(crate) struct Spawn {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) cwd: PathBuf,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) limits: Vec<Limit>,
}

type Job = (Spawn, mpsc::Sender<io::Result<Child>>);

/// Starts `spawn` on the runtime's one spawner thread. `PR_SET_PDEATHSIG`
/// fires when the *thread* that forked the child ends, so children are
/// forked only by a thread that lives as long as the host process: the
/// child then dies exactly when the host does, `kill -9` included.
pub(crate) fn spawn(spawn: Spawn) -> io::Result<Child> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tenon-process-spawner".to_owned())
            .spawn(move || {
                for (job, reply) in rx {
                    let _ = reply.send(spawn_here(job));
                }
            })
            .ok()
            .map(|_| tx)
    });
    let Some(sender) = sender else {
        return Err(io::Error::other(
            "the process spawner thread could not start",
        ));
    };
    let (tx, rx) = mpsc::channel();
    sender
        .send((spawn, tx))
        .map_err(|_| io::Error::other("the process spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("the process spawner thread is gone"))?
}

fn spawn_here(spawn: Spawn) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;

    let mut command = Command::new(&spawn.program);
    command
        .args(&spawn.args)
        .env_clear()
        .envs(spawn.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spawn.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let parent = rustix::process::getpid();
    let limits = spawn.limits;
    install_pre_exec(&mut command, move || in_child(parent, &limits));
    // A freshly written executable can be briefly "busy" while another
    // thread's fork still holds its write descriptor; retry a few times.
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(26) && attempts < 5 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Runs in the child between `fork` and `exec`: only async-signal-safe
/// system calls (rustix's are raw system calls, no allocation).
fn in_child(parent: Pid, limits: &[Limit]) -> io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    // The host may have died between fork and prctl: then nobody would kill us.
    if rustix::process::getppid() != Some(parent) {
        return Err(io::Error::other("the host exited while the plugin started"));
    }
    for limit in limits {
        let value = Some(limit.value);
        rustix::process::setrlimit(
            limit.resource.resource(),
            Rlimit {
                current: value,
                maximum: value,
            },
        )?;
    }
    Ok(())
}

#[allow(unsafe_code)]
fn install_pre_exec(
    command: &mut Command,
    f: impl FnMut() -> io::Result<()> + Send + Sync + 'static,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `f` (`in_child`) calls only async-signal-safe raw system calls
    // (prctl, getppid, setrlimit) through rustix, allocates nothing and takes
    // no lock, as `pre_exec` requires of code running between fork and exec.
    unsafe {
        command.pre_exec(f);
    }
}

/// Kills the process group `pgid` (the plugin and every child it made that
/// stayed in its group). An already empty group is not an error.
pub(crate) fn kill_group(pgid: u32) {
    if let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    }
}
