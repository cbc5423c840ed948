//! The storage interface, one suite for both backends: SQLite in a temporary
//! directory always, and PostgreSQL (a fresh database per test) wherever
//! `SUANLI_TEST_DATABASE_URL` names a server; `.ci/run` sets it.

#![allow(clippy::unwrap_used)]

use suanli_aggregator::store::{NewProvider, SampleRow, Store, TokenRefusal, now_ms};
use suanli_protocol::stream::SequencedSample;

/// Runs `check` against every backend available here.
async fn on_each_backend<F, Fut>(name: &str, check: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    check(Store::open(&Store::sqlite_url(dir.path())).await.unwrap()).await;
    match std::env::var("SUANLI_TEST_DATABASE_URL") {
        Ok(url) => {
            check(
                Store::open(&fresh_database(&url, name).await)
                    .await
                    .unwrap(),
            )
            .await
        }
        Err(_) => eprintln!("{name}: SUANLI_TEST_DATABASE_URL not set, PostgreSQL skipped"),
    }
}

async fn fresh_database(url: &str, name: &str) -> String {
    use sqlx::Connection;
    let db = format!("suanli_store_{name}");
    let mut conn = sqlx::postgres::PgConnection::connect(url).await.unwrap();
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
    store
        .create_provider(&NewProvider {
            name: "测试".into(),
            uscc: "91350100M000100Y43".into(),
            region: "110108".into(),
            industry: "I65".into(),
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

#[tokio::test]
async fn providers_get_owner_codes_and_are_unique() {
    on_each_backend("providers", |store| async move {
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
            })
            .await;
        assert!(again.unwrap_err().to_string().contains("P00001"));
    })
    .await;
}

#[tokio::test]
async fn tokens_expire_and_run_out() {
    on_each_backend("tokens", |store| async move {
        let p = provider(&store).await;
        let now = now_ms();
        store
            .create_token(p, "once", now + 60_000, 1)
            .await
            .unwrap();
        store.create_token(p, "old", now - 1, 5).await.unwrap();
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
    })
    .await;
}

#[tokio::test]
async fn a_machine_keeps_its_id_and_identifiers_across_enrollments() {
    on_each_backend("enroll", |store| async move {
        let p = provider(&store).await;
        let first = store
            .enroll_host(p, "machine-1", "a", "cert-1")
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
            .enroll_host(p, "machine-1", "a", "cert-2")
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
    })
    .await;
}

#[tokio::test]
async fn each_sample_is_stored_once_and_gaps_are_counted() {
    on_each_backend("samples", |store| async move {
        let p = provider(&store).await;
        let h = store.enroll_host(p, "m", "h", "c").await.unwrap();
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
        let listing = &store.list_hosts().await.unwrap()[0];
        assert_eq!(listing.samples_stored, 6);
        assert_eq!((listing.first_seq, listing.last_seq), (Some(0), Some(6)));
        assert_eq!(listing.gaps, 1, "seq 3 is missing");
    })
    .await;
}

#[tokio::test]
async fn old_samples_become_minute_rollups_and_expire() {
    on_each_backend("retention", |store| async move {
        let p = provider(&store).await;
        let h = store.enroll_host(p, "m", "h", "c").await.unwrap();
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
    })
    .await;
}
