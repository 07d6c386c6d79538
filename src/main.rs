//! `callcoach`: command-line entry point. Parsing and wiring only; the work is in the crates.

mod bench;
mod summary;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use callcoach_audio::analyze::{analyze_call, AgentChannel, CallInput};
use callcoach_audio::call::CallConfig;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "callcoach",
    version,
    about = "Real-time speech-analysis assistant for call-centre agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse a recorded call: loudness, voice activity, silences, talk-over, jumps, speech rate.
    Analyze {
        /// Stereo call (agent left by default) or the agent's mono recording.
        call: PathBuf,
        /// The caller's mono recording, when the parties are in two files.
        #[arg(long)]
        caller: Option<PathBuf>,
        /// Which channel of a stereo call is the agent.
        #[arg(long, value_enum, default_value_t = ChannelArg::Left)]
        agent_channel: ChannelArg,
        /// Write the full JSON report here ("-" for standard output).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Analyse the part that is there when a file is shorter than its header says.
        #[arg(long)]
        allow_truncated: bool,
    },
    /// Measure the real-time factor of the feature path on a 10-minute stereo call.
    Bench {
        /// Minutes of audio per rate.
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Sample rates to measure.
        #[arg(long, value_delimiter = ',', default_values_t = vec![8000u32, 16000, 48000])]
        rates: Vec<u32>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ChannelArg {
    Left,
    Right,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Analyze {
            call,
            caller,
            agent_channel,
            json,
            allow_truncated,
        } => {
            let input = CallInput {
                call,
                caller,
                agent_channel: match agent_channel {
                    ChannelArg::Left => AgentChannel::Left,
                    ChannelArg::Right => AgentChannel::Right,
                },
                allow_truncated,
            };
            let report = analyze_call(&input, &CallConfig::default())?;
            let text = serde_json::to_string_pretty(&report).context("serialising the report")?;
            match json.as_deref() {
                Some(p) if p.as_os_str() == "-" => println!("{text}"),
                Some(p) => {
                    print!("{}", summary::render(&report));
                    std::fs::write(p, text + "\n").with_context(|| {
                        format!("{}: cannot write the JSON report", p.display())
                    })?;
                    println!("JSON report: {}", p.display());
                }
                None => print!("{}", summary::render(&report)),
            }
            Ok(())
        }
        Command::Bench { minutes, rates } => bench::run(minutes, &rates),
    }
}
