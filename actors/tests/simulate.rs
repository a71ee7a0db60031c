//! The simulator as a test: a budget of steps of the real engine with every guard on finds no
//! violation, a seed replays exactly, and each store guard the simulator can reach, switched
//! off, is caught within a bounded number of seeds (so the guards are proven needed).

use std::time::Instant;
use wallyt_pay_actors::sim::{run_seed, Guards, SimConfig};

/// Runs seeds from `first` until `steps` steps are done; answers (seeds, steps, violations).
fn budget(config: &SimConfig, first: u64, steps: usize) -> (u64, usize, Vec<String>) {
    let (mut seed, mut done, mut violations) = (first, 0, Vec::new());
    while done < steps {
        let report = run_seed(seed, config);
        done += report.steps;
        violations.extend(report.violation);
        seed += 1;
    }
    (seed - first, done, violations)
}

#[test]
fn a_budget_of_steps_keeps_money_and_stock_right() {
    let started = Instant::now();
    let (seeds, steps, violations) = budget(&SimConfig::default(), 10_000, 250_000);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "simulated {seeds} seeds, {steps} steps, {} violations in {secs:.1} s ({:.0} steps/s)",
        violations.len(),
        steps as f64 / secs
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// The lock service fails open and every request arrives twice: with every guard on, money
/// and stock still hold. (It found two refunds of one order that drew the same number in one
/// millisecond, the second answered with the first's refund, bound to another request.)
#[test]
fn a_hostile_world_keeps_money_and_stock_right() {
    let (_, _, violations) = budget(&SimConfig::hostile(), 0, 150_000);
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn a_seed_replays_exactly() {
    let config = SimConfig::default();
    for seed in [3, 290] {
        let (a, b) = (run_seed(seed, &config), run_seed(seed, &config));
        assert_eq!(
            (a.steps, &a.summary, &a.violation, &a.known_bug),
            (b.steps, &b.summary, &b.violation, &b.known_bug),
            "seed {seed} replayed differently"
        );
        assert!(
            a.steps > config.steps,
            "seed {seed} did something: {}",
            a.summary
        );
    }
}

/// The first seed (from 0, at most `seeds`) whose run breaks an invariant without `guard`.
/// Only real violations count: a seed stopped by an allow-listed engine bug proves nothing
/// about the guard.
fn caught_without(guard: &str, config: SimConfig, seeds: u64) -> u64 {
    let config = SimConfig {
        guards: Guards::without(guard),
        ..config
    };
    (0..seeds)
        .find(|seed| {
            let report = run_seed(*seed, &config);
            report.violation.is_some()
        })
        .unwrap_or_else(|| panic!("no violation in {seeds} seeds without the {guard} guard"))
}

#[test]
fn without_pay_once_a_payment_is_applied_twice() {
    caught_without("pay_once", SimConfig::default(), 10);
}

#[test]
fn without_the_stock_guard_orders_oversell() {
    caught_without("stock", SimConfig::default(), 10);
}

#[test]
fn without_finish_once_a_final_refund_changes_again() {
    caught_without("finish_once", SimConfig::default(), 40);
}

#[test]
fn without_the_expire_guard_an_order_expires_with_money_on_the_way() {
    caught_without("expire_guard", SimConfig::default(), 150);
}

#[test]
fn without_unique_keys_a_refund_is_made_twice() {
    // Two refunds under one out_refund_no need two requests of one order in one millisecond:
    // the hostile world (every request twice) makes that common.
    caught_without("unique_keys", SimConfig::hostile(), 40);
}

#[test]
fn without_the_refund_cap_refunds_exceed_the_payment() {
    // Behind working leases a buyer's refunds of one order never overlap: the cap is the
    // line that holds when the lock service fails open.
    caught_without("refund_cap", SimConfig::hostile(), 120);
}

#[test]
fn without_close_notpay_only_a_paid_trade_is_closed() {
    // A close must never land on a trade that was paid meanwhile: it takes a slow store call
    // between the close's read and its write, with the payment applied in between.
    let slow = SimConfig {
        slow_store: 150,
        ..SimConfig::hostile()
    };
    caught_without("close_notpay_only", slow, 1_500);
}
