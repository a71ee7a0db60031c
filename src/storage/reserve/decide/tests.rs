use super::*;
use proptest::prelude::*;

const NOW: UnixMillis = UnixMillis(1_733_486_700_000);

fn request(user_id: i64, lines: &[(i64, i64)], limits: PendingLimits) -> Reservation {
    Reservation {
        user_id,
        lines: lines
            .iter()
            .map(|&(ticket_type_id, quantity)| OrderLine {
                ticket_type_id,
                quantity,
            })
            .collect(),
        limits,
        expires_at: NOW,
        now: NOW,
    }
}

fn stock(rows: &[(i64, i64, i64)]) -> BTreeMap<i64, StockRow> {
    rows.iter()
        .map(|&(id, price, available)| {
            let row = StockRow {
                price: Fen::new(price),
                available,
            };
            (id, row)
        })
        .collect()
}

fn verdicts(results: &[Result<Admitted, CreateOrderError>]) -> Vec<String> {
    results
        .iter()
        .map(|r| match r {
            Ok(a) => format!("ok {}", a.total.get()),
            Err(CreateOrderError::UnknownTicketType(id)) => format!("unknown {id}"),
            Err(CreateOrderError::TooManyPending { orders, units }) => {
                format!("limit {orders}/{units}")
            }
            Err(CreateOrderError::InsufficientStock(id)) => format!("short {id}"),
            Err(CreateOrderError::Store(StoreError::Other(m))) => format!("store {m}"),
            Err(CreateOrderError::Store(e)) => format!("store {e:?}"),
        })
        .collect()
}

#[test]
fn the_earlier_request_gets_the_last_tickets_and_a_refused_one_takes_nothing() {
    let mut rows = stock(&[(1, 100, 3), (2, 50, 1)]);
    let requests = [
        request(10, &[(1, 2)], PendingLimits::OFF),
        // Type 1 has one left, type 2 one: this order wants two of type 2, so it takes
        // neither line.
        request(11, &[(1, 1), (2, 2)], PendingLimits::OFF),
        request(12, &[(1, 1), (2, 1)], PendingLimits::OFF),
        request(13, &[(1, 1)], PendingLimits::OFF),
    ];
    let results = decide(&requests, &mut rows, &mut HashMap::new());
    assert_eq!(
        verdicts(&results),
        ["ok 200", "short 2", "ok 150", "short 1"]
    );
    assert_eq!((rows[&1].available, rows[&2].available), (0, 0));
}

#[test]
fn the_limits_count_what_the_same_user_was_admitted_earlier_in_the_batch() {
    let limits = PendingLimits {
        max_orders: 2,
        max_units: 5,
    };
    let mut rows = stock(&[(1, 100, 100)]);
    let mut held = HashMap::from([(
        10,
        Held {
            orders: 1,
            units: 2,
        },
    )]);
    let requests = [
        request(10, &[(1, 2)], limits),
        request(10, &[(1, 1)], limits),
        request(11, &[(1, 5)], limits),
        request(11, &[(1, 1)], limits),
    ];
    let results = decide(&requests, &mut rows, &mut held);
    assert_eq!(
        verdicts(&results),
        ["ok 200", "limit 2/4", "ok 500", "limit 1/5"]
    );
    assert_eq!(
        held[&10],
        Held {
            orders: 2,
            units: 4
        }
    );
    assert_eq!(rows[&1].available, 93);
}

#[test]
fn checks_come_in_the_contracts_order() {
    let limits = PendingLimits {
        max_orders: 1,
        max_units: 0,
    };
    let mut rows = stock(&[(1, 100, 0)]);
    let mut held = HashMap::from([(
        10,
        Held {
            orders: 1,
            units: 1,
        },
    )]);
    let requests = [
        // An unknown type wins over the limit and the stock.
        request(10, &[(1, 1), (9, 1)], limits),
        // The limit wins over the stock.
        request(10, &[(1, 1)], limits),
        request(11, &[(1, 1)], limits),
    ];
    let results = decide(&requests, &mut rows, &mut held);
    assert_eq!(verdicts(&results), ["unknown 9", "limit 1/1", "short 1"]);
}

#[test]
fn lines_that_skipped_validation_are_refused_alone() {
    let mut rows = stock(&[(1, 100, 50), (2, 100, 50)]);
    let requests = [
        request(10, &[(2, 1), (1, 1)], PendingLimits::OFF),
        request(10, &[(1, 21)], PendingLimits::OFF),
        request(10, &[(1, 0)], PendingLimits::OFF),
        request(10, &[(1, 1), (1, 1)], PendingLimits::OFF),
        request(10, &[(1, 1), (2, 1)], PendingLimits::OFF),
    ];
    let results = decide(&requests, &mut rows, &mut HashMap::new());
    let refused = "store order lines were not validated";
    assert_eq!(
        verdicts(&results)[..4],
        [refused, refused, refused, refused]
    );
    assert_eq!(verdicts(&results)[4], "ok 200");
}

proptest! {
    /// Whatever arrives together: nothing is oversold, every admitted order got every line,
    /// what left stock is exactly what was admitted, the limits hold, and every verdict is
    /// the one a plain one-order-at-a-time reservation (`one_at_a_time`, written apart from
    /// `decide`) gives after the orders before it. Type 4 does not exist.
    #[test]
    fn a_batch_never_oversells_and_decides_as_one_at_a_time(
        available in proptest::collection::vec(0i64..8, 3),
        orders in proptest::collection::vec(
            (0i64..4, proptest::collection::btree_map(1i64..=4, 1i64..=4, 1..=3)),
            0..24,
        ),
        max_orders in 0u32..3,
        max_units in 0u32..8,
    ) {
        let limits = PendingLimits { max_orders, max_units };
        let rows: Vec<(i64, i64, i64)> =
            available.iter().enumerate().map(|(i, &a)| (i as i64 + 1, 100, a)).collect();
        let requests: Vec<Reservation> = orders
            .iter()
            .map(|(user, lines)| {
                let lines: Vec<(i64, i64)> = lines.iter().map(|(&t, &q)| (t, q)).collect();
                request(*user, &lines, limits)
            })
            .collect();

        let mut batched = stock(&rows);
        let mut held = HashMap::new();
        let results = decide(&requests, &mut batched, &mut held);

        prop_assert_eq!(verdicts(&results), one_at_a_time(&requests, &rows));

        for (id, _, before) in &rows {
            let taken: i64 = results
                .iter()
                .flatten()
                .flat_map(|a| &a.items)
                .filter(|i| i.ticket_type_id == *id)
                .map(|i| i.quantity)
                .sum();
            prop_assert!(batched[id].available >= 0);
            prop_assert_eq!(batched[id].available, before - taken);
        }
        let mut per_user: HashMap<i64, (i64, i64)> = HashMap::new();
        for (request, result) in requests.iter().zip(&results) {
            if let Ok(admitted) = result {
                prop_assert_eq!(admitted.items.len(), request.lines.len());
                let user = per_user.entry(request.user_id).or_default();
                user.0 += 1;
                user.1 += request.units();
            }
        }
        for (orders, units) in per_user.values() {
            prop_assert!(max_orders == 0 || *orders <= i64::from(max_orders));
            prop_assert!(max_units == 0 || *units <= i64::from(max_units));
        }
    }
}

/// The reference: each order in turn against counters, as a lone transaction would run it
/// (unknown type, then the limits, then stock, all lines or none); prices are 100 fen.
fn one_at_a_time(requests: &[Reservation], rows: &[(i64, i64, i64)]) -> Vec<String> {
    let mut left: HashMap<i64, i64> = rows.iter().map(|&(id, _, a)| (id, a)).collect();
    let mut held: HashMap<i64, (i64, i64)> = HashMap::new();
    let mut verdicts = Vec::new();
    for r in requests {
        let units: i64 = r.lines.iter().map(|l| l.quantity).sum();
        let (orders, units_held) = held.get(&r.user_id).copied().unwrap_or_default();
        let verdict = if let Some(l) = r
            .lines
            .iter()
            .find(|l| !left.contains_key(&l.ticket_type_id))
        {
            format!("unknown {}", l.ticket_type_id)
        } else if !r.limits.allows(orders, units_held, units) {
            format!("limit {orders}/{units_held}")
        } else if let Some(l) = r
            .lines
            .iter()
            .find(|l| left[&l.ticket_type_id] < l.quantity)
        {
            format!("short {}", l.ticket_type_id)
        } else {
            for l in &r.lines {
                *left.get_mut(&l.ticket_type_id).unwrap() -= l.quantity;
            }
            held.insert(r.user_id, (orders + 1, units_held + units));
            format!("ok {}", units * 100)
        };
        verdicts.push(verdict);
    }
    verdicts
}
