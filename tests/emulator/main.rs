//! Everything that needs an IVS Chat emulator but no Kubernetes, in one test binary: the emulator through the
//! real SDK and raw signed HTTP (`sdk`), its accounts, regions and STS (`accounts`), its chat Messaging API over
//! WebSocket (`messaging`), the official JS client and the AWS CLI against it (`messaging_js`, `cli`),
//! `kubectl ivschat tail` beside the JS client (`tail`), concurrency and fuzzing (`concurrency`, `fuzz`), and the
//! operator's AWS call discipline against real endpoints (`aws_calls`).
//!
//! Every test starts its own emulator on a free port. Tests with tight time bounds take `serial::alone`;
//! the CPU-heavy ones (child processes, many tasks, generated inputs) take `serial::beside_others`, see
//! `ivschat_testsupport::serial`.

mod accounts;
mod aws_calls;
mod cli;
mod concurrency;
mod fuzz;
mod messaging;
mod messaging_js;
mod review;
mod sdk;
mod tail;
