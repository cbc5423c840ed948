//! The storage interface, one suite for both backends: SQLite in a temporary
//! directory, and PostgreSQL (a fresh database per test) on the server the
//! tests use (`suanli_tests::postgres_url`), which `.ci/test` starts.

#![allow(clippy::unwrap_used)]

use suanli_aggregator::{
    identify::HostIdentity,
    store::{
        AuditEntry, Held, HostClaim, HostListing, Kept, NewAccount, NewHold, NewProvider,
        NewRegistration, RegionLatency, SampleRow, SelectionRecord, Store, StoreError,
        TokenRefusal, now_ms,
    },
};
use suanli_protocol::stream::SequencedSample;
use suanli_tests::{component, postgres_url};

/// A store test run twice: on SQLite in a temporary directory, and on a
/// fresh PostgreSQL database named `$db` (ignored by a plain `cargo test`;
/// `.ci/test` starts the server and runs it).
macro_rules! on_each_backend {
    ($db:literal, $(#[$doc:meta])* async fn $test:ident($store:ident) $body:block) => {
        $(#[$doc])*
        mod $test {
            use super::*;

            async fn check($store: Store) $body

            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                check(Store::open(&Store::sqlite_url(dir.path())).await.unwrap()).await;
            }

            #[tokio::test]
            #[ignore = "needs PostgreSQL: run .ci/test"]
            async fn postgres() {
                check(Store::open(&fresh_database($db).await).await.unwrap()).await;
            }
        }
    };
}

async fn fresh_database(name: &str) -> String {
    use sqlx::Connection;
    let url = postgres_url();
    let url = url.as_str();
    let db = format!("suanli_store_{name}");
    let mut conn = match sqlx::postgres::PgConnection::connect(url).await {
        Ok(conn) => conn,
        Err(e) => component::missing("PostgreSQL", &format!("{url}: {e}")),
    };
    component::found("PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    format!("{base}/{db}")
}

async fn provider(store: &Store) -> i64 {
    provider_named(store, "测试", "91350100M000100Y43").await
}

/// A second provider, beside [`provider`]'s.
async fn other_provider(store: &Store) -> i64 {
    provider_named(store, "其他", "91110108551385082Q").await
}

async fn provider_named(store: &Store, name: &str, uscc: &str) -> i64 {
    store
        .create_provider(&NewProvider {
            name: name.into(),
            uscc: uscc.into(),
            region: "110108".into(),
            industry: "I65".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}

fn sample(host_id: i64, seq: u64, collected_at_ms: u64, cpu: f64) -> SampleRow {
    let mut s = SequencedSample {
        seq,
        ..Default::default()
    };
    s.sample.collected_at_unix_ms = collected_at_ms;
    s.sample.cpu.utilization_percent = Some(cpu);
    SampleRow {
        host_id,
        seq,
        collected_at_ms,
        body: s.encode(),
    }
}

on_each_backend! {
    "providers",
    async fn providers_get_owner_codes_and_are_unique(store) {
        let id = provider(&store).await;
        let p = store.provider("p00001").await.unwrap();
        assert_eq!((p.id, p.owner_code.as_str()), (id, "P00001"));
        assert_eq!(store.provider("91350100M000100Y43").await.unwrap().id, id);
        let again = store
            .create_provider(&NewProvider {
                name: "again".into(),
                uscc: "91350100M000100Y43".into(),
                region: "110108".into(),
                industry: "I65".into(),
                ..Default::default()
            })
            .await;
        assert!(again.unwrap_err().to_string().contains("P00001"));
    }
}

on_each_backend! {
    "tokens",
    async fn tokens_expire_and_run_out(store) {
        let p = provider(&store).await;
        let now = now_ms();
        store
            .create_token(p, "once", now + 60_000, 1, None)
            .await
            .unwrap();
        store
            .create_token(p, "old", now - 1, 5, None)
            .await
            .unwrap();
        assert_eq!(store.redeem_token("once", now).await.unwrap(), Ok(p));
        assert_eq!(
            store.redeem_token("once", now).await.unwrap(),
            Err(TokenRefusal::UsedUp)
        );
        assert_eq!(
            store.redeem_token("old", now).await.unwrap(),
            Err(TokenRefusal::Expired)
        );
        assert_eq!(
            store.redeem_token("nope", now).await.unwrap(),
            Err(TokenRefusal::Unknown)
        );
    }
}

on_each_backend! {
    "ownership",
    async fn a_host_stays_with_its_provider_until_staff_transfer_it(store) {
        let p = provider(&store).await;
        let other = other_provider(&store).await;
        let original = HostIdentity::claimed(
            Some("m"),
            Some("4c4c4544-0042-3510-8052-b4c04f384e32"),
            None,
        )
        .unwrap();
        let (key, claim) = store.host_for_identity(&original).await.unwrap();
        assert_eq!((key.as_str(), claim), ("m", None));
        let h = store
            .enroll_host(p, &key, original.hardware.as_deref(), "h", "c1")
            .await
            .unwrap();
        let (_, claim) = store.host_for_identity(&original).await.unwrap();
        assert_eq!(
            claim,
            Some(HostClaim {
                host_id: h,
                provider_id: p
            })
        );
        // Another provider cannot take it, even racing past the pre-check.
        let taken = store
            .enroll_host(other, "m", None, "h", "c2")
            .await
            .unwrap_err();
        assert!(matches!(taken, StoreError::Conflict(_)), "{taken}");
        assert!(
            store.host_by_cert("c1").await.unwrap().is_some(),
            "the holder keeps its certificate"
        );
        // Other hardware under the same machine-id is another host's key.
        let clone = HostIdentity::claimed(
            Some("m"),
            Some("5d3f0000-1111-2222-3333-444455556666"),
            None,
        )
        .unwrap();
        let (key, claim) = store.host_for_identity(&clone).await.unwrap();
        assert_eq!(claim, None);
        assert!(key.starts_with("m/uuid="), "{key}");
        // A device the first host named cannot be named by another
        // provider's host; the same provider's other host gets its name.
        let gpu = store
            .ensure_resource(h, "gpu:GPU-1", "ai", |serial| format!("ID-{serial}"))
            .await
            .unwrap();
        let elsewhere = store
            .enroll_host(other, "m-other", None, "o", "c9")
            .await
            .unwrap();
        let taken = store
            .ensure_resource(elsewhere, "gpu:GPU-1", "ai", |_| unreachable!())
            .await
            .unwrap_err();
        assert!(matches!(taken, StoreError::Conflict(_)), "{taken}");
        let sibling = store
            .enroll_host(p, "m-sibling", None, "s", "c8")
            .await
            .unwrap();
        let same = store
            .ensure_resource(sibling, "gpu:GPU-1", "ai", |_| unreachable!())
            .await
            .unwrap();
        assert_eq!(same, gpu);
        // Transferred: revoked, and the new provider enrolls the same host.
        assert_eq!(store.transfer_host(&h.to_string(), other).await.unwrap(), h);
        assert!(store.host_by_cert("c1").await.unwrap().unwrap().revoked);
        assert_eq!(
            store
                .enroll_host(other, "m", None, "h", "c3")
                .await
                .unwrap(),
            h
        );
    }
}

on_each_backend! {
    "enroll",
    async fn a_machine_keeps_its_id_and_identifiers_across_enrollments(store) {
        let p = provider(&store).await;
        let first = store
            .enroll_host(p, "machine-1", None, "a", "cert-1")
            .await
            .unwrap();
        let identifier = store
            .ensure_resource(first, "host:machine-1", "general", |serial| {
                format!("ID-{serial}")
            })
            .await
            .unwrap();
        store.revoke_host(&first.to_string()).await.unwrap();
        assert!(store.host_by_cert("cert-1").await.unwrap().unwrap().revoked);
        // Reinstalled: new certificate, same machine.
        let second = store
            .enroll_host(p, "machine-1", None, "a", "cert-2")
            .await
            .unwrap();
        assert_eq!(first, second);
        let auth = store.host_by_cert("cert-2").await.unwrap().unwrap();
        assert!(!auth.revoked, "re-enrollment lifts a revocation");
        assert!(store.host_by_cert("cert-1").await.unwrap().is_none());
        let again = store
            .ensure_resource(second, "host:machine-1", "general", |_| unreachable!())
            .await
            .unwrap();
        assert_eq!(identifier, again);
        assert_eq!(
            store.host_identifier(second).await.unwrap(),
            Some(identifier)
        );
    }
}

on_each_backend! {
    "samples",
    async fn each_sample_is_stored_once_and_gaps_are_counted(store) {
        let p = provider(&store).await;
        let h = store.enroll_host(p, "m", None, "h", "c").await.unwrap();
        let now = now_ms();
        let batch: Vec<_> = [0, 1, 2, 4, 5].map(|s| sample(h, s, now, 1.0)).into();
        store.store_samples(&batch).await.unwrap();
        // A resend after a lost acknowledgement, mixed with a new sample.
        store
            .store_samples(&[sample(h, 4, now, 9.0), sample(h, 6, now, 1.0)])
            .await
            .unwrap();
        assert_eq!(store.stored_seqs(h).await.unwrap(), vec![0, 1, 2, 4, 5, 6]);
        assert_eq!(store.stored_through(h).await.unwrap(), Some(6));
        let listing = &store.listed_hosts(&[h]).await.unwrap()[0];
        assert_eq!(listing.samples_stored, 6);
        assert_eq!((listing.first_seq, listing.last_seq), (Some(0), Some(6)));
        assert_eq!(listing.gaps, 1, "seq 3 is missing");

        // The hosts asked for, each with its own figures.
        let other = other_provider(&store).await;
        let h2 = store.enroll_host(p, "m2", None, "h2", "c2").await.unwrap();
        let h3 = store
            .enroll_host(other, "m3", None, "h3", "c3")
            .await
            .unwrap();
        store
            .store_samples(&[sample(h3, 0, now, 1.0)])
            .await
            .unwrap();
        let ids = |page: Vec<HostListing>| page.iter().map(|l| l.host_id).collect::<Vec<_>>();
        assert_eq!(ids(store.listed_hosts(&[h, h2]).await.unwrap()), [h, h2]);
        let rest = store.listed_hosts(&[h3]).await.unwrap();
        assert_eq!(ids(rest.clone()), [h3]);
        assert_eq!((rest[0].samples_stored, rest[0].gaps), (1, 0));
        assert_ne!(rest[0].provider, listing.provider, "another provider's host");
        assert!(store.listed_hosts(&[]).await.unwrap().is_empty());
        assert!(store.listed_hosts(&[h3 + 100]).await.unwrap().is_empty());
    }
}

on_each_backend! {
    "retention",
    async fn old_samples_become_minute_rollups_and_expire(store) {
        let p = provider(&store).await;
        let h = store.enroll_host(p, "m", None, "h", "c").await.unwrap();
        let minute = 1_700_000_040_000;
        let recent = now_ms();
        store
            .store_samples(&[
                sample(h, 0, minute + 1_000, 10.0),
                sample(h, 1, minute + 30_000, 30.0),
                sample(h, 2, minute + 61_000, 50.0),
                sample(h, 3, recent, 70.0),
            ])
            .await
            .unwrap();
        let cutoff = recent - 1;
        assert_eq!(
            store.roll_up(cutoff, 2).await.unwrap(),
            2,
            "bounded batches"
        );
        assert_eq!(store.roll_up(cutoff, 100).await.unwrap(), 1);
        assert_eq!(
            store.roll_up(cutoff, 100).await.unwrap(),
            0,
            "the recent one stays raw"
        );
        assert_eq!(store.stored_seqs(h).await.unwrap(), vec![3]);

        // A late resend of seq 1 lands raw again and must not count twice.
        store
            .store_samples(&[sample(h, 1, minute + 30_000, 99.0)])
            .await
            .unwrap();
        store.roll_up(cutoff, 100).await.unwrap();

        let rollups = store.rollups(h, 0).await.unwrap();
        assert_eq!(rollups.len(), 2);
        let (at, first) = &rollups[0];
        assert_eq!(*at, minute);
        assert_eq!(first.samples, 2);
        assert_eq!(first.cpu_utilization_percent.mean(), Some(20.0));
        assert_eq!(first.cpu_utilization_percent.max, 30.0);
        assert_eq!(rollups[1].1.samples, 1);

        assert_eq!(store.expire_rollups(minute + 60_000).await.unwrap(), 1);
        assert_eq!(store.rollups(h, 0).await.unwrap().len(), 1);
    }
}

on_each_backend! {
    "hourly",
    /// Whole hours become hourly rollups made of their minutes, once,
    /// after every minute of them is rolled up; minutes expire with them.
    async fn whole_hours_become_hourly_rollups_once(store) {
        use suanli_aggregator::history::{HOUR_MS, Rollup};
        let p = provider(&store).await;
        let a = store.enroll_host(p, "ma", None, "a", "c").await.unwrap();
        let b = store.enroll_host(p, "mb", None, "b", "d").await.unwrap();
        let hour = now_ms() / HOUR_MS * HOUR_MS - 5 * HOUR_MS;
        assert!(!store.make_hourly(now_ms()).await.unwrap(), "nothing rolled up yet");
        store
            .store_samples(&[
                sample(a, 0, hour + 1_000, 10.0),
                sample(b, 0, hour + 5 * 60_000, 40.0),
                sample(a, 1, hour + 30 * 60_000, 30.0),
                sample(a, 2, hour + HOUR_MS + 10 * 60_000, 50.0),
            ])
            .await
            .unwrap();
        store.roll_up(now_ms(), 100).await.unwrap();
        assert_eq!(store.hourly_until().await.unwrap(), None);
        // Only an hour that ended by the cutoff is made.
        assert!(store.make_hourly(hour + HOUR_MS).await.unwrap());
        assert!(!store.make_hourly(hour + HOUR_MS).await.unwrap());
        assert_eq!(store.hourly_until().await.unwrap(), Some(hour + HOUR_MS));
        let of = |rows: Vec<(u64, Vec<u8>)>| -> Vec<(u64, Rollup)> {
            rows.into_iter()
                .map(|(at, body)| (at, Rollup::from_bytes(&body).unwrap()))
                .collect()
        };
        let hours_a = of(store.hourly_rollup_bodies(a, 0, u64::MAX / 2).await.unwrap());
        assert_eq!(hours_a.len(), 1);
        assert_eq!(hours_a[0].0, hour);
        assert_eq!(hours_a[0].1.samples, 2);
        assert_eq!(hours_a[0].1.cpu_utilization_percent.mean(), Some(20.0));
        let hours_b = of(store.hourly_rollup_bodies(b, 0, u64::MAX / 2).await.unwrap());
        assert_eq!(hours_b.len(), 1);
        assert_eq!(hours_b[0].1.cpu_utilization_percent.mean(), Some(40.0));
        // The next hour with a minute, then the empty ones up to now at once.
        let mut made = 0;
        while store.make_hourly(now_ms()).await.unwrap() {
            made += 1;
        }
        assert_eq!(made, 1);
        assert_eq!(
            store.hourly_until().await.unwrap(),
            Some(now_ms() / HOUR_MS * HOUR_MS)
        );
        let hours_a = of(store.hourly_rollup_bodies(a, 0, u64::MAX / 2).await.unwrap());
        assert_eq!(hours_a.len(), 2);
        assert_eq!(hours_a[1].1.cpu_utilization_percent.mean(), Some(50.0));
        // A sample arriving after its hour was made (a spool emptied after
        // a long outage) makes the hour again when it is rolled up.
        store
            .store_samples(&[sample(b, 1, hour + 50 * 60_000, 60.0)])
            .await
            .unwrap();
        store.roll_up(now_ms(), 100).await.unwrap();
        let hours_b = of(store.hourly_rollup_bodies(b, 0, u64::MAX / 2).await.unwrap());
        assert_eq!(hours_b.len(), 1);
        assert_eq!(hours_b[0].1.samples, 2);
        assert_eq!(hours_b[0].1.cpu_utilization_percent.mean(), Some(50.0));
        // Expiring drops whole hours before the cutoff's hour, and minutes.
        store.expire_rollups(hour + HOUR_MS).await.unwrap();
        let hours_a = of(store.hourly_rollup_bodies(a, 0, u64::MAX / 2).await.unwrap());
        assert_eq!(hours_a.len(), 1);
        assert_eq!(hours_a[0].0, hour + HOUR_MS);
    }
}

/// Both backends refuse to rewrite the audit log, whoever asks.
mod the_audit_log_is_append_only {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        refuses_rewrites(&Store::sqlite_url(dir.path())).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: run .ci/test"]
    async fn postgres() {
        refuses_rewrites(&fresh_database("audit").await).await;
    }
}

async fn refuses_rewrites(url: &str) {
    let store = Store::open(url).await.unwrap();
    let entry = AuditEntry {
        actor: "alice".into(),
        action: "token.create".into(),
        subject: "token/1".into(),
        detail: String::new(),
        address: "10.0.0.1".into(),
    };
    store.audit(&entry).await.unwrap();
    use sqlx::Connection as _;
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    for sql in [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
    ] {
        let err = sqlx::raw_sql(sql).execute(&mut conn).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{url}: {err}");
    }
    let log = store
        .audit_log(&suanli_aggregator::store::AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].entry.actor, "alice");
}

on_each_backend! {
    "review",
    async fn approval_creates_the_provider_and_ties_the_applicant_to_it(store) {
        let account = store
            .create_account(&NewAccount {
                login: "acme".into(),
                password_hash: "x".into(),
                role: "provider".into(),
                provider_id: None,
                must_change_password: false,
            })
            .await
            .unwrap();
        let filed = store
            .create_registration(&NewRegistration {
                kind: "provider".into(),
                name: "Acme".into(),
                uscc: "91350100M000100Y43".into(),
                uscc_verified: true,
                region: "350100".into(),
                industry: "I65".into(),
                contact: "x".into(),
                account_id: account.id,
            })
            .await
            .unwrap();
        assert_eq!(filed.state, "pending");
        let done = store
            .review_registration(filed.id, true, None, "admin")
            .await
            .unwrap();
        let code = done.provider.clone().unwrap();
        let provider = store.provider(&code).await.unwrap();
        let (account, _) = store.account_for_login("acme").await.unwrap().unwrap();
        assert_eq!(account.provider_id, Some(provider.id));
        assert!(matches!(
            store
                .review_registration(filed.id, false, Some("no"), "admin")
                .await,
            Err(suanli_aggregator::store::StoreError::Conflict(_))
        ));
        assert!(matches!(
            store
                .create_account(&NewAccount {
                    login: "acme".into(),
                    password_hash: "x".into(),
                    role: "user".into(),
                    provider_id: None,
                    must_change_password: false,
                })
                .await,
            Err(suanli_aggregator::store::StoreError::Conflict(_))
        ));
    }
}

on_each_backend! {
    "selections",
    async fn selections_are_recorded_and_read_back_newest_first(store) {
        for (i, matched) in [3i64, 0].into_iter().enumerate() {
            store
                .record_selection(&SelectionRecord {
                    id: 0,
                    at_ms: 1_000 + i as i64,
                    actor: "alice".into(),
                    demand: serde_json::json!({"accelerator": {"model": "H100"}}),
                    matched_hosts: matched,
                    candidates: matched.min(1),
                    chosen: serde_json::json!(["CN.X"]),
                    elapsed_us: 1234,
                    no_match: (matched == 0).then(|| "accelerators".into()),
                    lines_used: 0,
                })
                .await
                .unwrap();
        }
        let list = store.selections(None, 10).await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].matched_hosts, list[1].matched_hosts), (0, 3));
        assert_eq!(list[1].demand["accelerator"]["model"], "H100");
        assert_eq!(
            store.selections(Some(list[0].id), 10).await.unwrap().len(),
            1
        );
    }
}

on_each_backend! {
    "region_latency",
    async fn observed_region_latency_is_kept_per_minute_and_expires(store) {
        let row = |minute_ms: i64, to: &str, median: i64| RegionLatency {
            minute_ms,
            from_region: "110000".into(),
            to_region: to.into(),
            hosts: 3,
            median_rtt_us: median,
            min_rtt_us: median / 2,
            max_rtt_us: median * 2,
        };
        store
            .record_region_latency(&[row(60_000, "440300", 30_000), row(60_000, "110108", 900)])
            .await
            .unwrap();
        // The same minute again keeps the later figures.
        store
            .record_region_latency(&[
                row(60_000, "440300", 32_000),
                row(120_000, "440300", 31_000),
            ])
            .await
            .unwrap();
        let kept = store.region_latency(0).await.unwrap();
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[1], row(60_000, "440300", 32_000));
        assert_eq!(store.expire_region_latency(120_000).await.unwrap(), 2);
        assert_eq!(
            store.region_latency(0).await.unwrap(),
            vec![row(120_000, "440300", 31_000)]
        );
    }
}

on_each_backend! {
    "login_failures",
    async fn failed_sign_ins_are_counted_per_key_within_the_window(store) {
        const WINDOW: u64 = 300_000;
        let t0 = 1_800_000_000_000u64;
        let alice = ["ip:10.0.0.1".to_owned(), "login:alice".to_owned()];
        for _ in 0..5 {
            assert_eq!(store.login_wait(&alice, 5, WINDOW, t0).await.unwrap(), None);
            store.login_failed(&alice, WINDOW, t0).await.unwrap();
        }
        assert_eq!(
            store
                .login_wait(&alice, 5, WINDOW, t0 + 1_000)
                .await
                .unwrap(),
            Some(WINDOW - 1_000)
        );
        // The same login from another address is refused, and another login
        // from the same address.
        let elsewhere = ["ip:10.0.0.2".to_owned(), "login:alice".to_owned()];
        let bob = ["ip:10.0.0.1".to_owned(), "login:bob".to_owned()];
        assert!(
            store
                .login_wait(&elsewhere, 5, WINDOW, t0)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .login_wait(&bob, 5, WINDOW, t0)
                .await
                .unwrap()
                .is_some()
        );
        // Once the window has passed, counting starts again from one.
        let later = t0 + WINDOW;
        assert_eq!(
            store.login_wait(&alice, 5, WINDOW, later).await.unwrap(),
            None
        );
        store.login_failed(&alice, WINDOW, later).await.unwrap();
        assert_eq!(
            store.login_wait(&alice, 1, WINDOW, later).await.unwrap(),
            Some(WINDOW)
        );
        assert_eq!(
            store.login_wait(&alice, 2, WINDOW, later).await.unwrap(),
            None
        );
        // A success clears its keys.
        store.login_succeeded(&alice).await.unwrap();
        assert_eq!(
            store.login_wait(&alice, 1, WINDOW, later).await.unwrap(),
            None
        );
    }
}

fn filing(identifier: &str, revision: u64, state: &str) -> suanli_protocol::node::Filing {
    suanli_protocol::node::Filing {
        identifier: identifier.into(),
        revision,
        resource_type: "A".into(),
        state: state.into(),
        ..Default::default()
    }
}

on_each_backend! {
    "library_revisions",
    async fn the_library_keeps_each_identifier_at_its_highest_revision(store) {
        let a = "CN.32.I65_P00001_I65_320102_A_H100-80G_000001_X";
        let applied = store
            .apply_filings(None, &[filing(a, 2, "active")], None)
            .await
            .unwrap();
        assert_eq!((applied.stored, applied.ignored), (1, 0));
        // The same revision again, and an older one: ignored.
        let applied = store
            .apply_filings(
                None,
                &[filing(a, 2, "active"), filing(a, 1, "revoked")],
                None,
            )
            .await
            .unwrap();
        assert_eq!((applied.stored, applied.ignored), (0, 2));
        let entry = store.library_entry(a).await.unwrap().unwrap();
        assert_eq!(
            (entry.filing.revision, entry.filing.state.as_str()),
            (2, "active")
        );
        // A higher one replaces it and is to be spooled again.
        store
            .apply_filings(None, &[filing(a, 3, "revoked")], None)
            .await
            .unwrap();
        let unspooled = store.unspooled(10).await.unwrap();
        assert_eq!(unspooled.len(), 1);
        assert_eq!(unspooled[0].revision, 3);
        store.mark_spooled(&[(a.into(), 3)]).await.unwrap();
        assert!(store.unspooled(10).await.unwrap().is_empty());
    }
}

on_each_backend! {
    "parent_lease",
    async fn one_replica_holds_the_parent_link_and_a_new_holder_refiles_everything(store) {
        use suanli_aggregator::store::Lease;
        let a = "CN.32.I65_P00001_I65_320102_A_H100-80G_000001_X";
        let old = "CN.LOCAL_P00001_I65_320102_A_H100-80G_000001_X";
        store
            .apply_filings(
                None,
                &[filing(a, 1, "active"), filing(old, 1, "superseded")],
                None,
            )
            .await
            .unwrap();
        store
            .mark_spooled(&[(a.into(), 1), (old.into(), 1)])
            .await
            .unwrap();
        let now = 1_000_000;
        assert_eq!(
            store.take_parent_lease("a", now, 30_000).await.unwrap(),
            Lease::Held { taken: true }
        );
        assert_eq!(
            store
                .take_parent_lease("a", now + 10_000, 30_000)
                .await
                .unwrap(),
            Lease::Held { taken: false }
        );
        assert_eq!(
            store
                .take_parent_lease("b", now + 20_000, 30_000)
                .await
                .unwrap(),
            Lease::HeldElsewhere { holder: "a".into() }
        );
        // Taking over refiles the library, but never an own identifier
        // superseded by a reissued one.
        store.mark_spooled(&[(a.into(), 1)]).await.unwrap();
        assert_eq!(
            store
                .take_parent_lease("b", now + 41_000, 30_000)
                .await
                .unwrap(),
            Lease::Held { taken: true }
        );
        let unspooled = store.unspooled(10).await.unwrap();
        assert_eq!(
            unspooled
                .iter()
                .map(|f| f.identifier.as_str())
                .collect::<Vec<_>>(),
            [a]
        );
    }
}

fn market_report(origin: &str, start: u64, registered: u64) -> suanli_protocol::node::MarketReport {
    suanli_protocol::node::MarketReport {
        origin: origin.into(),
        stream: "resource".into(),
        period_start_ms: start,
        period_ms: 10_000,
        groups: vec![suanli_protocol::node::CapacityGroup {
            region: "320102".into(),
            resource_type: "C".into(),
            registered,
            online: registered,
            healthy: registered,
            ..Default::default()
        }],
        rating_table: "test".into(),
        figures: Vec::new(),
        periods: 0,
    }
}

on_each_backend! {
    "market_reports",
    /// A period's report is kept once: a resend changes nothing, other
    /// figures for it are refused and recorded beside out-of-bounds ones,
    /// and what is kept is relayed up once.
    async fn a_period_is_kept_once_and_refusals_are_recorded(store) {
        let own = market_report("CN.32", 10_000, 1);
        assert_eq!(store.store_own_report(&own).await.unwrap(), Kept::Stored);
        assert_eq!(store.store_own_report(&own).await.unwrap(), Kept::Resent);
        let child = market_report("CN.32.I65", 10_000, 2);
        let bent = market_report("CN.32.I65", 10_000, 3);
        let stray = market_report("CN.44", 20_000, 1);
        let refused = [(&stray, "outside the child's prefix".to_owned())];
        let (_, applied) = store
            .apply_record(1, &[], &[child.clone(), child.clone(), bent], &refused, 0)
            .await
            .unwrap();
        assert_eq!((applied.stored, applied.resent, applied.conflicts), (1, 1, 1));
        let reasons: Vec<String> =
            store.report_refusals(0).await.unwrap().into_iter().map(|r| r.reason).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("already held")), "{reasons:?}");
        let period = store.period_reports("resource", 10_000, 10_000).await.unwrap();
        let kept: Vec<(&str, u64)> = period
            .iter()
            .map(|s| (s.report.origin.as_str(), s.report.groups[0].registered))
            .collect();
        assert_eq!(kept, [("CN.32", 1), ("CN.32.I65", 2)]);
        assert_eq!(period[1].child_id, Some(1));
        let unspooled = store.unspooled_reports(10).await.unwrap();
        assert_eq!(unspooled.len(), 2);
        let keys: Vec<_> = unspooled.into_iter().map(|(k, _)| k).collect();
        store.mark_reports_spooled(&keys).await.unwrap();
        assert!(store.unspooled_reports(10).await.unwrap().is_empty());
        let origins = store.report_origins("resource", 10_000, 0, 20_000).await.unwrap();
        assert_eq!(origins, [("CN.32".to_owned(), 1), ("CN.32.I65".to_owned(), 1)]);
        // The trend's points: periods on a multiple of the step.
        let every = |step| store.reports_every("resource", 10_000, step, 0, 20_000);
        assert_eq!(every(10_000).await.unwrap().len(), 2);
        assert!(every(20_000).await.unwrap().is_empty());
        // What a rollup sums: this node's own reports, by the hour they
        // fall in (an hour later, a second one).
        store.store_own_report(&market_report("CN.32", 3_610_000, 4)).await.unwrap();
        let hours = store
            .own_report_periods("CN.32", "resource", 10_000, 3_600_000, 0, 7_200_000)
            .await
            .unwrap();
        assert_eq!(hours.into_iter().collect::<Vec<_>>(), [0, 3_600_000]);
        let own = store.own_reports("CN.32", "resource", 10_000, 0, 3_600_000).await.unwrap();
        assert_eq!(own.len(), 1, "the child's are not this node's own");
        // Each period kept as long as its retention.
        let retained = 20_000 + suanli_aggregator::market::RETENTION_MS;
        assert_eq!(store.prune_reports(retained).await.unwrap(), 2);
    }
}

on_each_backend! {
    "market_hourly_inputs",
    /// The hourly streams read what the node recorded: accounts by role,
    /// the audit log's security events, selections, API keys, and this
    /// node's own resource periods.
    async fn the_hourly_streams_read_what_the_node_recorded(store) {
        store
            .create_account(&NewAccount {
                login: "ops".into(),
                password_hash: "x".into(),
                role: "operator".into(),
                provider_id: None,
                must_change_password: false,
            })
            .await
            .unwrap();
        for action in ["login.failed", "login.failed", "host.revoke"] {
            store
                .audit(&AuditEntry {
                    actor: "test".into(),
                    action: action.into(),
                    subject: "s".into(),
                    detail: String::new(),
                    address: "local".into(),
                })
                .await
                .unwrap();
        }
        store
            .record_selection(&SelectionRecord {
                id: 0,
                at_ms: 5_000,
                actor: "alice".into(),
                demand: serde_json::json!({"cpu_cores": 1, "user_region": "440305"}),
                matched_hosts: 1,
                candidates: 1,
                chosen: serde_json::json!(["not an identifier"]),
                elapsed_us: 2_000,
                no_match: None,
                lines_used: 2,
            })
            .await
            .unwrap();
        store.store_own_report(&market_report("CN", 10_000, 1)).await.unwrap();
        let end = now_ms() + 1;
        let hour = store.platform_hour("CN", 0, end).await.unwrap();
        assert_eq!(hour.accounts_by_role, [("operator".to_owned(), 1)]);
        assert!(hour.audit.contains(&("login.failed".to_owned(), 2)), "{:?}", hour.audit);
        assert_eq!(hour.resource_periods, 1);
        use suanli_aggregator::market;
        let figures = market::platform_figures(&hour);
        let value = |name: &str, label: &str| {
            figures.iter().find(|f| f.name == name && f.label == label).map(|f| f.value)
        };
        assert_eq!(value("sign_ins_failed", ""), Some(2));
        assert_eq!(value("revocations", "host"), Some(1));
        assert_eq!(value("up_seconds", ""), Some(10));
        let facts: Vec<_> = store
            .selections_between(0, 10_000)
            .await
            .unwrap()
            .iter()
            .map(|s| {
                market::SelectionFact::of(
                    &s.demand,
                    &s.chosen,
                    s.candidates,
                    s.elapsed_us,
                    s.no_match.as_deref(),
                    s.lines_used,
                )
            })
            .collect();
        assert_eq!(facts.len(), 1);
        assert_eq!(facts[0].lines_used, 2);
        assert!(facts[0].matched);
        assert_eq!(facts[0].user_region.as_deref(), Some("440305"));
        assert_eq!((facts[0].elapsed_us, facts[0].chosen_province.as_deref()), (2_000, None));
        assert!(store.selections_between(5_001, 10_000).await.unwrap().is_empty());
        assert_eq!(store.active_api_keys(end).await.unwrap(), 0);
        // The API's calls, added to their hour by every replica.
        use suanli_aggregator::telemetry::ApiCall;
        let call = ApiCall {
            hour_start_ms: 3_600_000,
            route_class: "hosts",
            credential: "api_key",
            status_class: "2xx",
        };
        store.add_api_calls(&[(call, 3)]).await.unwrap();
        store.add_api_calls(&[(call, 4)]).await.unwrap();
        let calls = store.api_calls(3_600_000).await.unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!((calls[0].route_class.as_str(), calls[0].calls), ("hosts", 7));
        assert!(store.api_calls(0).await.unwrap().is_empty());
        store.prune_api_calls(7_200_000).await.unwrap();
        assert!(store.api_calls(3_600_000).await.unwrap().is_empty());
    }
}

on_each_backend! {
    "holds",
    /// Two holders racing for one accelerator: exactly one gets it, however
    /// their transactions interleave; a replay returns the same hold; an
    /// expired hold lets the next holder in.
    async fn of_two_holders_racing_for_one_accelerator_exactly_one_wins(store) {
        let p = provider(&store).await;
        let host = store.enroll_host(p, "m", None, "h", "c1").await.unwrap();
        let gpu = vec!["CN_P00001_I65_110108_A_H100-80G_000001_4".to_owned()];
        let now = 1_800_000_000_000u64;
        for round in 0..20 {
            let racers = ["alice", "bob"].map(|holder| {
                let (store, gpu) = (store.clone(), gpu.clone());
                tokio::spawn(async move {
                    let key = format!("{holder}/{round}");
                    store
                        .hold(
                            &NewHold {
                                request_key: &key,
                                host_id: host,
                                resources: &gpu,
                                holder,
                                provider_id: Some(p),
                                expires_at_ms: now + 1000 * (round + 1),
                            },
                            now + 1000 * round,
                        )
                        .await
                })
            });
            let mut won = Vec::new();
            for racer in racers {
                match racer.await.unwrap() {
                    Ok(Held::New(r)) => won.push(r),
                    Ok(Held::Replayed(r)) => panic!("not a replay: {r:?}"),
                    Err(StoreError::Conflict(m)) => assert!(m.to_string().contains("is held"), "{m}"),
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(won.len(), 1, "round {round}: {won:?}");
            let open = store.open_reservations(now + 1000 * round).await.unwrap();
            assert_eq!(open.len(), 1, "round {round}: the loser left nothing");
            // The same request again: the same hold.
            let again = store
                .hold(
                    &NewHold {
                        request_key: &format!("{}/{round}", won[0].holder),
                        host_id: host,
                        resources: &gpu,
                        holder: &won[0].holder,
                        provider_id: Some(p),
                        expires_at_ms: now + 1000 * (round + 1),
                    },
                    now + 1000 * round,
                )
                .await
                .unwrap();
            assert_eq!(again, Held::Replayed(won[0].clone()));
            // Each round's hold runs out as the next begins.
        }
        assert_eq!(store.expire_holds(now + 100_000).await.unwrap(), 20);
        assert!(store.open_reservations(now + 100_000).await.unwrap().is_empty());
        let last = store.reservations(1).await.unwrap().remove(0);
        assert_eq!(last.ended_by.as_deref(), Some("expired"));
        // The same request twice at the same moment: one hold, answered twice.
        let twins = [0, 1].map(|_| {
            let (store, gpu) = (store.clone(), gpu.clone());
            tokio::spawn(async move {
                store
                    .hold(
                        &NewHold {
                            request_key: "dave/1",
                            host_id: host,
                            resources: &gpu,
                            holder: "dave",
                            provider_id: Some(p),
                            expires_at_ms: now + 150_000,
                        },
                        now + 100_001,
                    )
                    .await
                    .unwrap()
            })
        });
        let mut ids = Vec::new();
        let mut replays = 0;
        for twin in twins {
            match twin.await.unwrap() {
                Held::New(r) => ids.push(r.id),
                Held::Replayed(r) => {
                    replays += 1;
                    ids.push(r.id);
                }
            }
        }
        assert_eq!((replays, ids[0]), (1, ids[1]), "{ids:?}");
        store.release(ids[0], "dave", now + 100_002).await.unwrap();
        // Released early, it is free for another at once.
        let held = store
            .hold(
                &NewHold {
                    request_key: "carol/1",
                    host_id: host,
                    resources: &gpu,
                    holder: "carol",
                    provider_id: Some(p),
                    expires_at_ms: now + 1_000_000,
                },
                now + 200_000,
            )
            .await
            .unwrap();
        let Held::New(held) = held else { panic!() };
        let ended = store.release(held.id, "carol", now + 200_001).await.unwrap();
        assert_eq!(ended.ended_by.as_deref(), Some("carol"));
        assert!(store.open_reservations(now + 200_002).await.unwrap().is_empty());
    }
}

on_each_backend! {
    "audit_filter",
    /// The audit log's filters mean the same on both databases: an exact
    /// actor, an action prefix and a subject part regardless of case, a
    /// `%` or `_` typed taken literally, and a time range.
    async fn the_audit_log_is_filtered_alike_on_both_databases(store) {
        use suanli_aggregator::store::AuditFilter;
        for (actor, action, subject) in [
            ("alice", "account.create", "account/Duty_1"),
            ("bob", "account.disable", "account/duty_1"),
            ("alice", "silence.create", "silence 5%"),
        ] {
            store
                .audit(&AuditEntry {
                    actor: actor.into(),
                    action: action.into(),
                    subject: subject.into(),
                    detail: String::new(),
                    address: String::new(),
                })
                .await
                .unwrap();
        }
        let actions = |filter: AuditFilter| {
            let store = store.clone();
            async move {
                store
                    .audit_log(&AuditFilter { limit: 100, ..filter })
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.entry.action)
                    .collect::<Vec<_>>()
            }
        };
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            actions(AuditFilter { actor: some("alice"), ..Default::default() }).await,
            ["silence.create", "account.create"]
        );
        assert_eq!(
            actions(AuditFilter { action: some("ACCOUNT."), ..Default::default() }).await,
            ["account.disable", "account.create"]
        );
        assert_eq!(
            actions(AuditFilter { subject: some("DUTY_1"), ..Default::default() }).await,
            ["account.disable", "account.create"]
        );
        // `_` is a character, not any character; `%` too.
        assert!(actions(AuditFilter { subject: some("duty11"), ..Default::default() }).await.is_empty());
        assert_eq!(
            actions(AuditFilter { subject: some("5%"), ..Default::default() }).await,
            ["silence.create"]
        );
        assert!(actions(AuditFilter { action: some("%"), ..Default::default() }).await.is_empty());
        let all = store
            .audit_log(&AuditFilter { limit: 100, ..Default::default() })
            .await
            .unwrap();
        let first = all.last().unwrap().at_ms;
        assert!(actions(AuditFilter { until: Some(first), ..Default::default() }).await.is_empty());
        assert_eq!(
            actions(AuditFilter { since: Some(first), ..Default::default() }).await.len(),
            3
        );
    }
}
