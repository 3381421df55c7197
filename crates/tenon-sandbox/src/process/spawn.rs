//! Starting a plugin's process: a fixed spawner thread, an empty
//! environment, no inherited descriptors, its own process group, death with
//! the host (`PR_SET_PDEATHSIG`), a PID namespace of its own when the host
//! can make one, and the OS limits applied before `exec`.
//!
//! In a PID namespace the host's child is a small supervisor (the forked
//! child itself, which never runs `exec`): it closes every descriptor it
//! inherited, forks the plugin as the namespace's first process (its PID 1)
//! and waits for it, exiting with its status. The plugin dies with the
//! supervisor (`PR_SET_PDEATHSIG`), the supervisor with the host, and every
//! process of the namespace with the plugin (the kernel kills a PID
//! namespace whose first process exits), so nothing the plugin starts can
//! outlive it, whatever process group or session it moves to.

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
    /// Start it in a PID namespace of its own (see [`pid_namespace`]).
    pub(crate) namespace: bool,
}

/// Whether this host can start plugins in a PID namespace of their own,
/// inside a user namespace (so the host needs no privilege): probed once,
/// by a child that tries it and exits before running anything.
pub(crate) fn pid_namespace() -> bool {
    static PROBE: OnceLock<bool> = OnceLock::new();
    *PROBE.get_or_init(|| {
        // The probe's closure fails on purpose with this code when the
        // namespaces were made, so the child never runs a program.
        const MADE: i32 = libc::ECANCELED;
        let mut command = Command::new("/");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let maps = IdMaps::of_host();
        install_pre_exec(&mut command, move || {
            make_namespaces(&maps)?;
            Err(io::Error::from_raw_os_error(MADE))
        });
        match command.spawn() {
            Err(e) => e.raw_os_error() == Some(MADE),
            Ok(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
                false
            }
        }
    })
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
    let maps = spawn.namespace.then(IdMaps::of_host);
    install_pre_exec(&mut command, move || {
        in_child(parent, &limits, maps.as_ref())
    });
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

/// The user and group id maps of the plugin's user namespace: the host's
/// own ids, mapped to themselves (written before `fork`, so the child only
/// copies bytes).
#[derive(Debug)]
struct IdMaps {
    uid: Vec<u8>,
    gid: Vec<u8>,
}

impl IdMaps {
    fn of_host() -> Self {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        Self {
            uid: format!("{uid} {uid} 1").into_bytes(),
            gid: format!("{gid} {gid} 1").into_bytes(),
        }
    }
}

/// Runs in the child between `fork` and `exec`: only async-signal-safe
/// system calls (rustix's and libc's raw system calls, no allocation).
fn in_child(parent: Pid, limits: &[Limit], maps: Option<&IdMaps>) -> io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    // The host may have died between fork and prctl: then nobody would kill us.
    if rustix::process::getppid() != Some(parent) {
        return Err(io::Error::other("the host exited while the plugin started"));
    }
    if let Some(maps) = maps {
        // Returns only in the plugin's process; the supervisor never does.
        enter_namespace(maps)?;
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

/// `unshare(CLONE_NEWUSER | CLONE_NEWPID)`: the caller's next child is the
/// first process of a new PID namespace. Only in a single-threaded child.
#[allow(unsafe_code)]
fn unshare_namespaces() -> io::Result<()> {
    // SAFETY: a raw system call on no memory of ours; it runs in a forked,
    // single-threaded child (the kernel refuses CLONE_NEWUSER otherwise).
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the user namespace (the host's ids mapped to themselves) and the
/// PID namespace of this process's next child.
fn make_namespaces(maps: &IdMaps) -> io::Result<()> {
    unshare_namespaces()?;
    write_proc(c"/proc/self/setgroups", b"deny")?;
    write_proc(c"/proc/self/uid_map", &maps.uid)?;
    write_proc(c"/proc/self/gid_map", &maps.gid)
}

/// Writes `bytes` to the file at `path` with raw system calls.
#[allow(unsafe_code)]
fn write_proc(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: `path` is a NUL-terminated string and `bytes` a live slice;
    // open, write and close are async-signal-safe.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let error = io::Error::last_os_error();
        libc::close(fd);
        if usize::try_from(written).ok() != Some(bytes.len()) {
            return Err(error);
        }
    }
    Ok(())
}

/// In the host's child: makes the user and PID namespaces, then forks. The
/// new child (the plugin, PID 1 of the namespace) returns to `exec`; this
/// process becomes the supervisor and never returns.
#[allow(unsafe_code)]
fn enter_namespace(maps: &IdMaps) -> io::Result<()> {
    make_namespaces(maps)?;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let [alive_read, alive_write] = fds;
    // SAFETY: this process is single-threaded (a forked child), so the new
    // child may run anything this one could; both run only async-signal-safe
    // system calls until `exec` or `_exit`.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // The plugin: it dies with its supervisor. The supervisor may
            // have died before the prctl; then its end of the pipe is closed.
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            // SAFETY: closing our copy of a descriptor we own; polling a
            // live `pollfd`.
            let hung_up = unsafe {
                libc::close(alive_write);
                let mut poll = libc::pollfd {
                    fd: alive_read,
                    events: libc::POLLIN,
                    revents: 0,
                };
                libc::poll(&mut poll, 1, 0) != 0
            };
            if hung_up {
                // (A raw error: nothing may allocate between fork and exec.)
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            // `alive_read` is close-on-exec.
            Ok(())
        }
        plugin => supervise(plugin, alive_write),
    }
}

/// The supervisor: keeps only `keep` (the plugin's sign that it lives),
/// waits for the plugin and ends as it ended.
#[allow(unsafe_code)]
fn supervise(plugin: libc::pid_t, keep: libc::c_int) -> ! {
    // SAFETY: raw system calls on descriptors and a process of this
    // process's own; nothing here allocates or returns into the host's code.
    unsafe {
        // Every descriptor but `keep`: the host's (close-on-exec only
        // closes them at an `exec`, which never comes), stdio included.
        let keep = keep as libc::c_uint;
        let closed = (keep == 0 || libc::syscall(libc::SYS_close_range, 0, keep - 1, 0) == 0)
            && libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0) == 0;
        if !closed {
            // A kernel before close_range: the plugin lives on, but the
            // host's descriptors must not.
            libc::kill(plugin, libc::SIGKILL);
            libc::_exit(127);
        }
        loop {
            let mut status = 0;
            let reaped = libc::waitpid(plugin, &mut status, 0);
            if reaped == plugin {
                if libc::WIFEXITED(status) {
                    libc::_exit(libc::WEXITSTATUS(status));
                }
                if libc::WIFSIGNALED(status) {
                    // End by the same signal, so the host reads the same status.
                    let signal = libc::WTERMSIG(status);
                    libc::signal(signal, libc::SIG_DFL);
                    libc::raise(signal);
                }
                libc::_exit(127);
            }
            if reaped == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                libc::_exit(127);
            }
        }
    }
}

#[allow(unsafe_code)]
fn install_pre_exec(
    command: &mut Command,
    f: impl FnMut() -> io::Result<()> + Send + Sync + 'static,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `f` (`in_child`, or the namespace probe) calls only
    // async-signal-safe raw system calls (prctl, getppid, setrlimit, unshare,
    // open, write, pipe2, fork, poll, close_range, waitpid, _exit) through
    // rustix and libc, allocates nothing and takes no lock, as `pre_exec`
    // requires of code running between fork and exec.
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
