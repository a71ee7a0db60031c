//! The deterministic simulator of the engine (issue 9).
//!
//! `cargo run --release -p wallyt-pay-actors --example simulate -- --seeds N [--seed S]
//! [--steps-per-seed K] [--without GUARD] [--split-brain] [--burst PER_MILLE] [--slow-store PER_MILLE]`
//!
//! Runs seeds S, S+1, … S+N−1 (S defaults to 0); each failing seed prints itself (seed, step,
//! invariant, trace) and replays exactly with `--seeds 1 --seed <seed>`. Ends with
//! `simulated S seeds, T steps, V violations`; the exit code is 1 when V > 0.

use std::time::Instant;
use wallyt_pay_actors::sim::{run_seed, SimConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut seeds, mut first, mut config) = (100u64, 0u64, SimConfig::default());
    while let Some(flag) = args.next() {
        let mut value = || -> u64 {
            let text = args.next().unwrap_or_default();
            text.parse().unwrap_or_else(|_| {
                eprintln!("{flag} needs a number, got {text:?}");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--seeds" => seeds = value(),
            "--seed" => first = value(),
            "--steps-per-seed" => config.steps = value() as usize,
            "--split-brain" => config.split_brain = true,
            "--burst" => config.burst = value() as u32,
            "--slow-store" => config.slow_store = value() as u32,
            // A mutation: the store without one of its guards (see `Guards::names`).
            "--without" => {
                let names = args.next().unwrap_or_default();
                for name in names.split(',') {
                    config.guards = config.guards.and_without(name);
                }
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let started = Instant::now();
    let (mut steps, mut violations, mut known, mut human) = (0usize, 0usize, 0usize, 0usize);
    for seed in first..first + seeds {
        let report = run_seed(seed, &config);
        steps += report.steps;
        human += report.needs_human.len();
        if std::env::var_os("SIM_VERBOSE").is_some() {
            println!("seed {seed}: {} steps {}", report.steps, report.summary);
        }
        if let Some(text) = &report.violation {
            violations += 1;
            println!("VIOLATION {text}");
        }
        if let Some(text) = &report.known_bug {
            known += 1;
            println!("known engine bug (allow-listed) {text}");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{:.1} s, {:.0} steps/s; {known} seeds stopped by allow-listed engine bugs; {human} refunds need a person",
        secs,
        steps as f64 / secs.max(1e-9)
    );
    println!("simulated {seeds} seeds, {steps} steps, {violations} violations");
    if violations > 0 {
        std::process::exit(1);
    }
}
