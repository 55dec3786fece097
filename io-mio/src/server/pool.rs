//! The password-check worker pool: a few threads run the core's
//! [`VerifyJob`]s (argon2id, tens of milliseconds each) so the event loop
//! never does. The queue in front of them is bounded: when it is full the
//! loop answers at once instead of letting a login flood grow memory or
//! delay everyone.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use mio::Waker;
use portcullis_core::cred::{Verdict, VerifyJob};
use portcullis_core::guard::Ticket;

use crate::config::VerifyPriority;

/// A finished check, on its way back to the loop.
pub struct Done {
    /// The connection that asked (its slab key).
    pub conn: usize,
    /// The guard's ticket for the check.
    pub ticket: Ticket,
    /// The job's verdict.
    pub verdict: Verdict,
}

struct Task {
    conn: usize,
    ticket: Ticket,
    job: VerifyJob,
}

/// The queue was full (or the pool is stopping): the job was not queued.
pub struct Full;

/// Worker threads behind a bounded queue.
pub struct VerifyPool {
    tasks: Option<SyncSender<Task>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
}

impl VerifyPool {
    /// Starts `workers` threads at `priority` behind a queue of `queue`
    /// waiting jobs; each finished job wakes the loop through `waker`.
    pub fn start(
        workers: usize,
        queue: usize,
        priority: VerifyPriority,
        waker: Arc<Waker>,
    ) -> std::io::Result<VerifyPool> {
        let (tasks, inbox) = mpsc::sync_channel::<Task>(queue);
        let inbox = Arc::new(Mutex::new(inbox));
        let (done_tx, done) = mpsc::channel();
        let mut handles = Vec::with_capacity(workers);
        for n in 0..workers.max(1) {
            let inbox = Arc::clone(&inbox);
            let done_tx = done_tx.clone();
            let waker = Arc::clone(&waker);
            let handle = thread::Builder::new()
                .name(format!("verify-{n}"))
                .spawn(move || {
                    lower_priority(priority);
                    work(&inbox, &done_tx, &waker);
                })?;
            handles.push(handle);
        }
        Ok(VerifyPool {
            tasks: Some(tasks),
            done,
            workers: handles,
        })
    }

    /// Queues a job, or refuses at once when the queue is full.
    pub fn try_submit(&self, conn: usize, ticket: Ticket, job: VerifyJob) -> Result<(), Full> {
        let Some(tasks) = &self.tasks else {
            return Err(Full);
        };
        match tasks.try_send(Task { conn, ticket, job }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Full),
        }
    }

    /// The next finished check, if any.
    pub fn poll_done(&self) -> Option<Done> {
        self.done.try_recv().ok()
    }
}

/// A worker's life: take a task, run it, send the verdict back, wake the
/// loop; until the pool is dropped.
fn work(inbox: &Mutex<Receiver<Task>>, done: &Sender<Done>, waker: &Waker) {
    loop {
        // Hold the lock only to take a task, not to run it.
        let task = match inbox.lock() {
            Ok(inbox) => inbox.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(task) = task else {
            return; // the loop dropped the pool
        };
        let verdict = task.job.run();
        let finished = Done {
            conn: task.conn,
            ticket: task.ticket,
            verdict,
        };
        if done.send(finished).is_err() {
            return;
        }
        // A failed wake means the loop is gone too.
        let _ = waker.wake();
    }
}

/// Password checks yield to the event loop (see [`VerifyPriority`]): on a
/// busy machine a login storm takes only the CPU time that serving pages
/// leaves over, so users already logged in are not slowed down (the queue
/// in front stays bounded; beyond it logins get 503).
fn lower_priority(priority: VerifyPriority) {
    use thread_priority::{set_current_thread_priority, ThreadPriority};
    match priority {
        VerifyPriority::Normal => return,
        VerifyPriority::Low => {}
        VerifyPriority::Idle => {
            #[cfg(target_os = "linux")]
            {
                use thread_priority::{
                    set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
                    ThreadSchedulePolicy,
                };
                let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
                let native = thread_native_id();
                if set_thread_priority_and_policy(native, ThreadPriority::Min, idle).is_ok() {
                    return;
                }
            }
        }
    }
    // Not fatal: without it checks just compete as equals.
    let _ = set_current_thread_priority(ThreadPriority::Min);
}

impl Drop for VerifyPool {
    fn drop(&mut self) {
        // Closing the queue ends each worker after its current job.
        self.tasks = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use thread_priority::{
        thread_schedule_policy, NormalThreadSchedulePolicy, ThreadSchedulePolicy,
    };

    /// The scheduling policy a worker thread ends up with at `priority`.
    fn policy_at(priority: VerifyPriority) -> ThreadSchedulePolicy {
        thread::spawn(move || {
            lower_priority(priority);
            thread_schedule_policy().expect("the thread's own policy")
        })
        .join()
        .expect("the thread ran")
    }

    #[test]
    fn idle_workers_run_only_when_nothing_else_wants_the_cpu() {
        // An unprivileged thread may always lower itself to SCHED_IDLE.
        assert_eq!(
            policy_at(VerifyPriority::Idle),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)
        );
        for priority in [VerifyPriority::Low, VerifyPriority::Normal] {
            assert_eq!(
                policy_at(priority),
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
                "{priority:?}"
            );
        }
    }
}
