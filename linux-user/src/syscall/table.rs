//! The riscv64 system call table: Linux's generic (asm-generic) numbers plus the
//! RISC-V ones, each with its name and what the emulator does with it. One line
//! per call, so `--strace`, the ENOSYS warning and the dispatcher cannot disagree.

use super::{Caller, files, memory, process, time};
use crate::ProcessEnd;
use crate::{net, signal};

/// What a system call does here.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Handler {
    /// Carried out by this function; its result goes to a0.
    Call(fn(&mut Caller<'_>, [u64; 6]) -> i64),
    /// Carried out by this function, which may end the thread or the process.
    Ending(fn(&mut Caller<'_>, [u64; 6]) -> Result<i64, ProcessEnd>),
    /// `rt_sigreturn`, which restores the registers instead of returning.
    SigReturn,
    /// Fails with this errno, as a kernel built without the feature (or a process
    /// without the privilege) does; no warning, since that is Linux's own answer.
    Absent(i32),
    /// Not emulated: ENOSYS, with a one-time warning naming the call.
    Missing,
}

/// One system call of the table.
#[derive(Debug)]
pub struct Syscall {
    /// Its number (in a7 on riscv64).
    pub(crate) number: u64,
    /// Linux's name for it.
    pub(crate) name: &'static str,
    /// What it does.
    pub(crate) handler: Handler,
    /// Which arguments are path names (`--strace` shows them as strings).
    pub(crate) paths: &'static [usize],
}

const fn call(f: fn(&mut Caller<'_>, [u64; 6]) -> i64) -> Handler {
    Handler::Call(f)
}

const fn ending(f: fn(&mut Caller<'_>, [u64; 6]) -> Result<i64, ProcessEnd>) -> Handler {
    Handler::Ending(f)
}

const SIGRETURN: Handler = Handler::SigReturn;
const NOSYS: Handler = Handler::Absent(libc::ENOSYS);
const EPERM: Handler = Handler::Absent(libc::EPERM);

macro_rules! syscalls {
    ($($number:literal $constant:ident $name:literal => $handler:expr $(, paths $paths:expr)?;)*) => {
        /// riscv64 system call numbers, named as Linux's `__NR_` constants.
        #[allow(missing_docs, reason = "the names are Linux's")]
        pub mod nr {
            $(pub const $constant: u64 = $number;)*
        }

        /// Every call, ordered by number.
        pub(crate) static TABLE: &[Syscall] = &[
            $(Syscall {
                number: $number,
                name: $name,
                handler: $handler,
                paths: syscalls!(@paths $($paths)?),
            },)*
        ];
    };
    (@paths) => { &[] };
    (@paths $paths:expr) => { &$paths };
}

syscalls! {
    0 IO_SETUP "io_setup" => NOSYS;
    1 IO_DESTROY "io_destroy" => NOSYS;
    2 IO_SUBMIT "io_submit" => NOSYS;
    3 IO_CANCEL "io_cancel" => NOSYS;
    4 IO_GETEVENTS "io_getevents" => NOSYS;
    5 SETXATTR "setxattr" => call(files::sys_setxattr), paths [0];
    6 LSETXATTR "lsetxattr" => call(files::sys_setxattr), paths [0];
    7 FSETXATTR "fsetxattr" => call(files::sys_setxattr);
    8 GETXATTR "getxattr" => call(files::sys_getxattr), paths [0];
    9 LGETXATTR "lgetxattr" => call(files::sys_getxattr), paths [0];
    10 FGETXATTR "fgetxattr" => call(files::sys_getxattr);
    11 LISTXATTR "listxattr" => call(files::sys_listxattr), paths [0];
    12 LLISTXATTR "llistxattr" => call(files::sys_listxattr), paths [0];
    13 FLISTXATTR "flistxattr" => call(files::sys_listxattr);
    14 REMOVEXATTR "removexattr" => call(files::sys_removexattr), paths [0];
    15 LREMOVEXATTR "lremovexattr" => call(files::sys_removexattr), paths [0];
    16 FREMOVEXATTR "fremovexattr" => call(files::sys_removexattr);
    17 GETCWD "getcwd" => call(files::sys_getcwd);
    19 EVENTFD2 "eventfd2" => call(files::sys_eventfd2);
    20 EPOLL_CREATE1 "epoll_create1" => call(|c, a| net::epoll_call(&c.memory, c.number, a));
    21 EPOLL_CTL "epoll_ctl" => call(|c, a| net::epoll_call(&c.memory, c.number, a));
    22 EPOLL_PWAIT "epoll_pwait" => call(|c, a| net::epoll_call(&c.memory, c.number, a));
    23 DUP "dup" => call(files::sys_dup);
    24 DUP3 "dup3" => call(files::sys_dup3);
    25 FCNTL "fcntl" => call(files::sys_fcntl);
    26 INOTIFY_INIT1 "inotify_init1" => call(files::sys_inotify_init1);
    27 INOTIFY_ADD_WATCH "inotify_add_watch" => call(files::sys_inotify_add_watch), paths [1];
    28 INOTIFY_RM_WATCH "inotify_rm_watch" => call(files::sys_inotify_rm_watch);
    29 IOCTL "ioctl" => call(files::sys_ioctl);
    30 IOPRIO_SET "ioprio_set" => call(files::sys_plain_file);
    31 IOPRIO_GET "ioprio_get" => call(files::sys_plain_file);
    32 FLOCK "flock" => call(files::sys_plain_file);
    33 MKNODAT "mknodat" => call(files::sys_mknodat), paths [1];
    34 MKDIRAT "mkdirat" => call(files::sys_mkdirat), paths [1];
    35 UNLINKAT "unlinkat" => call(files::sys_unlinkat), paths [1];
    36 SYMLINKAT "symlinkat" => call(files::sys_symlinkat), paths [0, 2];
    37 LINKAT "linkat" => call(files::sys_linkat), paths [1, 3];
    39 UMOUNT2 "umount2" => EPERM;
    40 MOUNT "mount" => EPERM;
    41 PIVOT_ROOT "pivot_root" => EPERM;
    43 STATFS "statfs" => call(files::sys_statfs), paths [0];
    44 FSTATFS "fstatfs" => call(files::sys_fstatfs);
    45 TRUNCATE "truncate" => call(files::sys_truncate), paths [0];
    46 FTRUNCATE "ftruncate" => call(files::sys_ftruncate);
    47 FALLOCATE "fallocate" => call(files::sys_plain_file);
    48 FACCESSAT "faccessat" => call(files::sys_faccessat), paths [1];
    49 CHDIR "chdir" => call(files::sys_chdir), paths [0];
    50 FCHDIR "fchdir" => call(files::sys_fchdir);
    51 CHROOT "chroot" => EPERM;
    52 FCHMOD "fchmod" => call(files::sys_fchmod);
    53 FCHMODAT "fchmodat" => call(files::sys_fchmodat), paths [1];
    54 FCHOWNAT "fchownat" => call(files::sys_fchownat), paths [1];
    55 FCHOWN "fchown" => call(files::sys_fchown);
    56 OPENAT "openat" => call(files::sys_openat), paths [1];
    57 CLOSE "close" => call(files::sys_close);
    58 VHANGUP "vhangup" => EPERM;
    59 PIPE2 "pipe2" => call(files::sys_pipe2);
    60 QUOTACTL "quotactl" => NOSYS;
    61 GETDENTS64 "getdents64" => call(files::sys_getdents64);
    62 LSEEK "lseek" => call(files::sys_lseek);
    63 READ "read" => call(files::sys_read);
    64 WRITE "write" => call(files::sys_write);
    65 READV "readv" => call(files::sys_readv);
    66 WRITEV "writev" => call(files::sys_readv);
    67 PREAD64 "pread64" => call(files::sys_read);
    68 PWRITE64 "pwrite64" => call(files::sys_write);
    69 PREADV "preadv" => call(files::sys_preadv);
    70 PWRITEV "pwritev" => call(files::sys_preadv);
    71 SENDFILE "sendfile" => call(files::sys_sendfile);
    72 PSELECT6 "pselect6" => call(files::sys_pselect6);
    73 PPOLL "ppoll" => call(files::sys_ppoll);
    74 SIGNALFD4 "signalfd4" => call(files::sys_signalfd4);
    75 VMSPLICE "vmsplice" => call(files::sys_vmsplice);
    76 SPLICE "splice" => call(files::sys_splice);
    77 TEE "tee" => call(files::sys_tee);
    78 READLINKAT "readlinkat" => call(files::sys_readlinkat), paths [1];
    79 NEWFSTATAT "newfstatat" => call(files::sys_newfstatat), paths [1];
    80 FSTAT "fstat" => call(files::sys_newfstatat);
    81 SYNC "sync" => call(files::sys_sync);
    82 FSYNC "fsync" => call(files::sys_fsync);
    83 FDATASYNC "fdatasync" => call(files::sys_fdatasync);
    84 SYNC_FILE_RANGE "sync_file_range" => call(files::sys_plain_file);
    85 TIMERFD_CREATE "timerfd_create" => call(time::sys_timerfd_create);
    86 TIMERFD_SETTIME "timerfd_settime" => call(time::sys_settime);
    87 TIMERFD_GETTIME "timerfd_gettime" => call(time::sys_gettime);
    88 UTIMENSAT "utimensat" => call(files::sys_utimensat), paths [1];
    89 ACCT "acct" => EPERM;
    90 CAPGET "capget" => call(process::sys_capget);
    91 CAPSET "capset" => call(process::sys_capget);
    92 PERSONALITY "personality" => call(process::sys_personality);
    93 EXIT "exit" => ending(process::sys_exit);
    94 EXIT_GROUP "exit_group" => ending(process::sys_exit_group);
    95 WAITID "waitid" => call(process::sys_waitid);
    96 SET_TID_ADDRESS "set_tid_address" => call(process::sys_set_tid_address);
    97 UNSHARE "unshare" => call(process::sys_plain_process);
    98 FUTEX "futex" => call(process::sys_futex);
    99 SET_ROBUST_LIST "set_robust_list" => call(process::sys_set_robust_list);
    100 GET_ROBUST_LIST "get_robust_list" => call(process::sys_get_robust_list);
    101 NANOSLEEP "nanosleep" => call(time::sys_nanosleep);
    102 GETITIMER "getitimer" => call(time::sys_gettime);
    103 SETITIMER "setitimer" => call(time::sys_setitimer);
    104 KEXEC_LOAD "kexec_load" => EPERM;
    105 INIT_MODULE "init_module" => EPERM;
    106 DELETE_MODULE "delete_module" => EPERM;
    107 TIMER_CREATE "timer_create" => call(time::sys_timer_create);
    108 TIMER_GETTIME "timer_gettime" => call(time::sys_gettime);
    109 TIMER_GETOVERRUN "timer_getoverrun" => call(time::sys_timer_delete);
    110 TIMER_SETTIME "timer_settime" => call(time::sys_settime);
    111 TIMER_DELETE "timer_delete" => call(time::sys_timer_delete);
    112 CLOCK_SETTIME "clock_settime" => call(time::sys_clock_settime);
    113 CLOCK_GETTIME "clock_gettime" => call(time::sys_clock_gettime);
    114 CLOCK_GETRES "clock_getres" => call(time::sys_clock_gettime);
    115 CLOCK_NANOSLEEP "clock_nanosleep" => call(time::sys_nanosleep);
    116 SYSLOG "syslog" => EPERM;
    117 PTRACE "ptrace" => EPERM;
    118 SCHED_SETPARAM "sched_setparam" => call(process::sys_sched);
    119 SCHED_SETSCHEDULER "sched_setscheduler" => call(process::sys_sched);
    120 SCHED_GETSCHEDULER "sched_getscheduler" => call(process::sys_plain_process);
    121 SCHED_GETPARAM "sched_getparam" => call(process::sys_sched);
    122 SCHED_SETAFFINITY "sched_setaffinity" => call(process::sys_sched);
    123 SCHED_GETAFFINITY "sched_getaffinity" => call(process::sys_sched_getaffinity);
    124 SCHED_YIELD "sched_yield" => call(process::sys_sched_yield);
    125 SCHED_GET_PRIORITY_MAX "sched_get_priority_max" => call(process::sys_plain_process);
    126 SCHED_GET_PRIORITY_MIN "sched_get_priority_min" => call(process::sys_plain_process);
    127 SCHED_RR_GET_INTERVAL "sched_rr_get_interval" => call(process::sys_sched);
    128 RESTART_SYSCALL "restart_syscall" => Handler::Absent(libc::EINTR);
    129 KILL "kill" => ending(process::sys_kill);
    130 TKILL "tkill" => ending(process::sys_kill);
    131 TGKILL "tgkill" => ending(process::sys_kill);
    132 SIGALTSTACK "sigaltstack" => call(|c, a| signal::sigaltstack(c.state, a));
    133 RT_SIGSUSPEND "rt_sigsuspend" => call(|c, a| signal::sigsuspend(c.state, a));
    134 RT_SIGACTION "rt_sigaction" => call(|c, a| signal::sigaction(c.cpu, c.state, a));
    135 RT_SIGPROCMASK "rt_sigprocmask" => call(|c, a| signal::sigprocmask(c.state, a));
    136 RT_SIGPENDING "rt_sigpending" => call(process::sys_rt_sigpending);
    137 RT_SIGTIMEDWAIT "rt_sigtimedwait" => call(|c, a| signal::sigtimedwait(c.state, a));
    138 RT_SIGQUEUEINFO "rt_sigqueueinfo" => call(process::sys_rt_sigqueueinfo);
    139 RT_SIGRETURN "rt_sigreturn" => SIGRETURN;
    140 SETPRIORITY "setpriority" => call(process::sys_getpriority);
    141 GETPRIORITY "getpriority" => call(process::sys_getpriority);
    142 REBOOT "reboot" => EPERM;
    143 SETREGID "setregid" => call(process::sys_plain_process);
    144 SETGID "setgid" => call(process::sys_setgid);
    145 SETREUID "setreuid" => call(process::sys_plain_process);
    146 SETUID "setuid" => call(process::sys_setuid);
    147 SETRESUID "setresuid" => call(process::sys_plain_process);
    148 GETRESUID "getresuid" => call(process::sys_getresuid);
    149 SETRESGID "setresgid" => call(process::sys_plain_process);
    150 GETRESGID "getresgid" => call(process::sys_getresuid);
    151 SETFSUID "setfsuid" => call(process::sys_plain_process);
    152 SETFSGID "setfsgid" => call(process::sys_plain_process);
    153 TIMES "times" => call(process::sys_times);
    154 SETPGID "setpgid" => call(process::sys_setpgid);
    155 GETPGID "getpgid" => call(process::sys_getpgid);
    156 GETSID "getsid" => call(process::sys_getsid);
    157 SETSID "setsid" => call(process::sys_setsid);
    158 GETGROUPS "getgroups" => call(process::sys_getgroups);
    159 SETGROUPS "setgroups" => call(process::sys_setgroups);
    160 UNAME "uname" => call(process::sys_uname);
    161 SETHOSTNAME "sethostname" => EPERM;
    162 SETDOMAINNAME "setdomainname" => EPERM;
    163 GETRLIMIT "getrlimit" => call(process::sys_getrlimit);
    164 SETRLIMIT "setrlimit" => call(process::sys_setrlimit);
    165 GETRUSAGE "getrusage" => call(process::sys_getrusage);
    166 UMASK "umask" => call(files::sys_umask);
    167 PRCTL "prctl" => call(process::sys_prctl);
    168 GETCPU "getcpu" => call(process::sys_getcpu);
    169 GETTIMEOFDAY "gettimeofday" => call(time::sys_gettimeofday);
    170 SETTIMEOFDAY "settimeofday" => call(time::sys_clock_settime);
    171 ADJTIMEX "adjtimex" => call(time::sys_adjtimex);
    172 GETPID "getpid" => call(process::sys_getpid);
    173 GETPPID "getppid" => call(process::sys_getppid);
    174 GETUID "getuid" => call(process::sys_getuid);
    175 GETEUID "geteuid" => call(process::sys_geteuid);
    176 GETGID "getgid" => call(process::sys_getgid);
    177 GETEGID "getegid" => call(process::sys_getegid);
    178 GETTID "gettid" => call(process::sys_gettid);
    179 SYSINFO "sysinfo" => call(process::sys_sysinfo);
    180 MQ_OPEN "mq_open" => NOSYS;
    181 MQ_UNLINK "mq_unlink" => NOSYS;
    182 MQ_TIMEDSEND "mq_timedsend" => NOSYS;
    183 MQ_TIMEDRECEIVE "mq_timedreceive" => NOSYS;
    184 MQ_NOTIFY "mq_notify" => NOSYS;
    185 MQ_GETSETATTR "mq_getsetattr" => NOSYS;
    186 MSGGET "msgget" => NOSYS;
    187 MSGCTL "msgctl" => NOSYS;
    188 MSGRCV "msgrcv" => NOSYS;
    189 MSGSND "msgsnd" => NOSYS;
    190 SEMGET "semget" => NOSYS;
    191 SEMCTL "semctl" => NOSYS;
    192 SEMTIMEDOP "semtimedop" => NOSYS;
    193 SEMOP "semop" => NOSYS;
    194 SHMGET "shmget" => NOSYS;
    195 SHMCTL "shmctl" => NOSYS;
    196 SHMAT "shmat" => NOSYS;
    197 SHMDT "shmdt" => NOSYS;
    198 SOCKET "socket" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    199 SOCKETPAIR "socketpair" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    200 BIND "bind" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    201 LISTEN "listen" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    202 ACCEPT "accept" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    203 CONNECT "connect" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    204 GETSOCKNAME "getsockname" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    205 GETPEERNAME "getpeername" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    206 SENDTO "sendto" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    207 RECVFROM "recvfrom" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    208 SETSOCKOPT "setsockopt" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    209 GETSOCKOPT "getsockopt" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    210 SHUTDOWN "shutdown" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    211 SENDMSG "sendmsg" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    212 RECVMSG "recvmsg" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    213 READAHEAD "readahead" => call(files::sys_plain_file);
    214 BRK "brk" => call(memory::sys_brk);
    215 MUNMAP "munmap" => call(memory::sys_munmap);
    216 MREMAP "mremap" => call(memory::sys_mremap);
    217 ADD_KEY "add_key" => NOSYS;
    218 REQUEST_KEY "request_key" => NOSYS;
    219 KEYCTL "keyctl" => NOSYS;
    220 CLONE "clone" => call(process::sys_clone);
    221 EXECVE "execve" => call(process::sys_execve), paths [0];
    222 MMAP "mmap" => call(memory::sys_mmap);
    223 FADVISE64 "fadvise64" => call(files::sys_plain_file);
    224 SWAPON "swapon" => EPERM;
    225 SWAPOFF "swapoff" => EPERM;
    226 MPROTECT "mprotect" => call(memory::sys_mprotect);
    227 MSYNC "msync" => call(memory::sys_msync);
    228 MLOCK "mlock" => call(memory::sys_mlock);
    229 MUNLOCK "munlock" => call(memory::sys_mlock);
    230 MLOCKALL "mlockall" => call(memory::sys_mlockall);
    231 MUNLOCKALL "munlockall" => call(memory::sys_mlockall);
    232 MINCORE "mincore" => call(memory::sys_mincore);
    233 MADVISE "madvise" => call(memory::sys_madvise);
    234 REMAP_FILE_PAGES "remap_file_pages" => NOSYS;
    235 MBIND "mbind" => NOSYS;
    236 GET_MEMPOLICY "get_mempolicy" => NOSYS;
    237 SET_MEMPOLICY "set_mempolicy" => NOSYS;
    238 MIGRATE_PAGES "migrate_pages" => NOSYS;
    239 MOVE_PAGES "move_pages" => NOSYS;
    240 RT_TGSIGQUEUEINFO "rt_tgsigqueueinfo" => call(process::sys_rt_sigqueueinfo);
    241 PERF_EVENT_OPEN "perf_event_open" => NOSYS;
    242 ACCEPT4 "accept4" => call(|c, a| net::socket_call(&c.memory, c.number, a));
    243 RECVMMSG "recvmmsg" => call(|c, a| net::multiple_messages(&c.memory, false, a));
    258 RISCV_HWPROBE "riscv_hwprobe" => call(process::sys_riscv_hwprobe);
    259 RISCV_FLUSH_ICACHE "riscv_flush_icache" => call(memory::sys_riscv_flush_icache);
    260 WAIT4 "wait4" => call(process::sys_wait4);
    261 PRLIMIT64 "prlimit64" => call(process::sys_prlimit64);
    262 FANOTIFY_INIT "fanotify_init" => EPERM;
    263 FANOTIFY_MARK "fanotify_mark" => EPERM;
    266 CLOCK_ADJTIME "clock_adjtime" => call(time::sys_adjtimex);
    267 SYNCFS "syncfs" => call(files::sys_plain_file);
    268 SETNS "setns" => call(process::sys_plain_process);
    269 SENDMMSG "sendmmsg" => call(|c, a| net::multiple_messages(&c.memory, true, a));
    270 PROCESS_VM_READV "process_vm_readv" => NOSYS;
    271 PROCESS_VM_WRITEV "process_vm_writev" => NOSYS;
    272 KCMP "kcmp" => NOSYS;
    273 FINIT_MODULE "finit_module" => EPERM;
    274 SCHED_SETATTR "sched_setattr" => call(process::sys_sched);
    275 SCHED_GETATTR "sched_getattr" => call(process::sys_sched);
    276 RENAMEAT2 "renameat2" => call(files::sys_renameat2), paths [1, 3];
    277 SECCOMP "seccomp" => NOSYS;
    278 GETRANDOM "getrandom" => call(process::sys_getrandom);
    279 MEMFD_CREATE "memfd_create" => call(files::sys_memfd_create);
    280 BPF "bpf" => NOSYS;
    281 EXECVEAT "execveat" => call(process::sys_execveat), paths [1];
    282 USERFAULTFD "userfaultfd" => EPERM;
    283 MEMBARRIER "membarrier" => call(process::sys_plain_process);
    284 MLOCK2 "mlock2" => call(memory::sys_mlock);
    285 COPY_FILE_RANGE "copy_file_range" => call(files::sys_splice);
    286 PREADV2 "preadv2" => call(files::sys_preadv);
    287 PWRITEV2 "pwritev2" => call(files::sys_preadv);
    288 PKEY_MPROTECT "pkey_mprotect" => call(memory::sys_pkey_mprotect);
    289 PKEY_ALLOC "pkey_alloc" => call(memory::sys_pkey_alloc);
    290 PKEY_FREE "pkey_free" => call(memory::sys_pkey_alloc);
    291 STATX "statx" => call(files::sys_statx), paths [1];
    292 IO_PGETEVENTS "io_pgetevents" => NOSYS;
    293 RSEQ "rseq" => NOSYS;
    294 KEXEC_FILE_LOAD "kexec_file_load" => EPERM;
    424 PIDFD_SEND_SIGNAL "pidfd_send_signal" => call(process::sys_pidfd_send_signal);
    425 IO_URING_SETUP "io_uring_setup" => NOSYS;
    426 IO_URING_ENTER "io_uring_enter" => NOSYS;
    427 IO_URING_REGISTER "io_uring_register" => NOSYS;
    428 OPEN_TREE "open_tree" => EPERM;
    429 MOVE_MOUNT "move_mount" => EPERM;
    430 FSOPEN "fsopen" => EPERM;
    431 FSCONFIG "fsconfig" => EPERM;
    432 FSMOUNT "fsmount" => EPERM;
    433 FSPICK "fspick" => EPERM;
    434 PIDFD_OPEN "pidfd_open" => call(process::sys_plain_process);
    435 CLONE3 "clone3" => call(process::sys_clone3);
    436 CLOSE_RANGE "close_range" => call(files::sys_plain_file);
    437 OPENAT2 "openat2" => call(files::sys_openat2), paths [1];
    438 PIDFD_GETFD "pidfd_getfd" => call(process::sys_plain_process);
    439 FACCESSAT2 "faccessat2" => call(files::sys_faccessat), paths [1];
    440 PROCESS_MADVISE "process_madvise" => NOSYS;
    441 EPOLL_PWAIT2 "epoll_pwait2" => call(|c, a| net::epoll_pwait2(&c.memory, a));
    442 MOUNT_SETATTR "mount_setattr" => EPERM;
    443 QUOTACTL_FD "quotactl_fd" => NOSYS;
    444 LANDLOCK_CREATE_RULESET "landlock_create_ruleset" => NOSYS;
    445 LANDLOCK_ADD_RULE "landlock_add_rule" => NOSYS;
    446 LANDLOCK_RESTRICT_SELF "landlock_restrict_self" => NOSYS;
    447 MEMFD_SECRET "memfd_secret" => NOSYS;
    448 PROCESS_MRELEASE "process_mrelease" => call(process::sys_plain_process);
    449 FUTEX_WAITV "futex_waitv" => NOSYS;
    450 SET_MEMPOLICY_HOME_NODE "set_mempolicy_home_node" => NOSYS;
    451 CACHESTAT "cachestat" => NOSYS;
    452 FCHMODAT2 "fchmodat2" => call(files::sys_fchmodat2), paths [1];
    453 MAP_SHADOW_STACK "map_shadow_stack" => NOSYS;
    454 FUTEX_WAKE "futex_wake" => NOSYS;
    455 FUTEX_WAIT "futex_wait" => NOSYS;
    456 FUTEX_REQUEUE "futex_requeue" => NOSYS;
    457 STATMOUNT "statmount" => NOSYS;
    458 LISTMOUNT "listmount" => NOSYS;
    459 LSM_GET_SELF_ATTR "lsm_get_self_attr" => NOSYS;
    460 LSM_SET_SELF_ATTR "lsm_set_self_attr" => NOSYS;
    461 LSM_LIST_MODULES "lsm_list_modules" => NOSYS;
    462 MSEAL "mseal" => NOSYS;
}

/// The entry for `number` in `table` (ordered by number).
pub(crate) fn lookup(table: &'static [Syscall], number: u64) -> Option<&'static Syscall> {
    table
        .binary_search_by_key(&number, |s| s.number)
        .ok()
        .map(|i| &table[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_ordered_by_number_with_unique_names() {
        for pair in TABLE.windows(2) {
            assert!(pair[0].number < pair[1].number, "{}", pair[1].name);
        }
        let mut names: Vec<&str> = TABLE.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
        assert_eq!(lookup(TABLE, 63).map(|s| s.name), Some("read"));
        assert_eq!(
            lookup(TABLE, nr::RISCV_FLUSH_ICACHE).map(|s| s.name),
            Some("riscv_flush_icache")
        );
        assert!(lookup(TABLE, 1000).is_none());
    }
}
