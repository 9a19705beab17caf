//! Standard input as a stream of lines, and the plumbing that feeds lines into a
//! client-streaming call.
//!
//! Reading standard input blocks, so one plain thread reads it and hands lines over a bounded
//! channel; when the channel is full the thread waits (back-pressure on whoever writes to us).
//! The thread is not a tokio blocking task on purpose: the runtime waits for those at exit,
//! and an interactive command must be able to end while the terminal still has input open.
//! The thread ends at end of input, or at the first line after its receiver is gone; the
//! process ending ends it otherwise.

use std::{
    future::Future,
    io::{self, BufRead as _},
};

use tokio::sync::mpsc;
use tonic::{Response, Status};

use crate::Failure;

/// Lines read ahead of the command.
const READ_AHEAD: usize = 64;

/// Lines of standard input, without their line ending; an `Err` ends the stream.
pub(crate) fn stdin_lines() -> mpsc::Receiver<io::Result<String>> {
    let (lines, receiver) = mpsc::channel(READ_AHEAD);
    let reader = std::thread::Builder::new()
        .name("stdin".to_owned())
        .spawn(move || {
            for line in io::stdin().lock().lines() {
                let failed = line.is_err();
                if lines.blocking_send(line).is_err() || failed {
                    return;
                }
            }
        });
    if let Err(err) = reader {
        // Without a reader the command sees an empty input, and says why.
        eprintln!("streamctl: cannot read standard input: {err}");
    }
    receiver
}

/// Runs a client-streaming `call` while `feeding` sends it messages, and returns the server's
/// answer with what `feeding` reported.
///
/// `feeding` owns the call's sender: when it returns, the request stream half-closes. If it
/// fails (unusable input), the call is dropped, which cancels it: the server keeps nothing of
/// a cancelled sensors or batch stream. If the server answers first (an error, usually), that
/// answer wins and the rest of the input is not read.
pub(crate) async fn send_while<R, T: Default>(
    call: impl Future<Output = Result<Response<R>, Status>>,
    feeding: impl Future<Output = Result<T, Failure>>,
) -> Result<(R, T), Failure> {
    tokio::pin!(call, feeding);
    let mut fed = None;
    loop {
        tokio::select! {
            answer = &mut call => {
                let answer = answer?.into_inner();
                return Ok((answer, fed.unwrap_or_default()));
            }
            report = &mut feeding, if fed.is_none() => fed = Some(report?),
        }
    }
}
