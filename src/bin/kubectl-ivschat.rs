//! `kubectl-ivschat`: the kubectl plugin binary; everything is in [`ivschat_operator::plugin`].

fn main() -> std::process::ExitCode {
    ivschat_operator::plugin::main()
}
