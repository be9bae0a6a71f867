//! The `ruleopt` binary: parse arguments, pick colours, run, map the result to an exit
//! code (0 ok, 1 bad input or failed run, 2 bad flags — clap's — or a feature that is
//! not implemented yet).

use clap::Parser as _;
use std::io::IsTerminal as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = ruleopt::Cli::parse();
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let out_color = cli.color.enabled(stdout.is_terminal());
    let err_color = cli.color.enabled(stderr.is_terminal());
    let result = {
        let (mut out, mut err) = (stdout.lock(), stderr.lock());
        ruleopt::run(
            &cli,
            &mut ruleopt::Output {
                out: &mut out,
                err: &mut err,
                out_color,
                err_color,
            },
        )
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
