//! The [`Store`] trait on PostgreSQL: the SQLite store's statements, with
//! `user_name` for `user` (a reserved word here), BIGINT for times, and
//! secrets sealed on the way in and opened on the way out.

use super::*;

const SELECT_TOTP: &str =
    "SELECT id, user_name, label, secret, algorithm, digits, period, last_step, created
     FROM credentials WHERE user_name = $1 AND method = 'totp' ORDER BY created, id";
const SELECT_FIDO2: &str = "SELECT id, user_name, key_handle, resident, public_key, algorithm, rp_id, presence, pin, verification, label, created, sign_count
     FROM fido2_credentials WHERE user_name = $1 AND NOT suspect ORDER BY created, id";
const LIST: &str = "SELECT id, method, label, created FROM credentials WHERE user_name = $1
     UNION ALL
     SELECT id, 'fido2', label, created FROM fido2_credentials WHERE user_name = $1
     UNION ALL
     SELECT id, 'ssh_agent_key', label, created FROM ssh_keys WHERE user_name = $1
     UNION ALL
     SELECT 'recovery', 'recovery', count(*) || ' unused code(s)', max(created)
       FROM recovery_codes WHERE user_name = $1 AND used_at IS NULL HAVING count(*) > 0
     ORDER BY 4, 1";
const LAST_SUCCESS_ANY: &str = "SELECT max(time) FROM history WHERE user_name = $1 AND time >= $2 AND outcome = 'success' AND $3::text = $3::text";
const LAST_SUCCESS_TTY: &str = "SELECT max(time) FROM history WHERE user_name = $1 AND time >= $2 AND outcome = 'success' AND tty = $3";
const LAST_SUCCESS_RHOST: &str = "SELECT max(time) FROM history WHERE user_name = $1 AND time >= $2 AND outcome = 'success' AND rhost = $3";

/// A let-in from a source: the location is replaced only by a let-in at
/// least as late as the one it records (as in the SQLite store).
const MARK_SOURCE_SEEN: &str = "INSERT INTO sources (user_name, rhost, last_seen, country, city, latitude, longitude, accuracy_radius, asn)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (user_name, rhost) DO UPDATE SET
       country = CASE WHEN excluded.last_seen >= sources.last_seen THEN excluded.country ELSE sources.country END,
       city = CASE WHEN excluded.last_seen >= sources.last_seen THEN excluded.city ELSE sources.city END,
       latitude = CASE WHEN excluded.last_seen >= sources.last_seen THEN excluded.latitude ELSE sources.latitude END,
       longitude = CASE WHEN excluded.last_seen >= sources.last_seen THEN excluded.longitude ELSE sources.longitude END,
       accuracy_radius = CASE WHEN excluded.last_seen >= sources.last_seen THEN excluded.accuracy_radius ELSE sources.accuracy_radius END,
       asn = CASE WHEN excluded.last_seen >= sources.last_seen THEN excluded.asn ELSE sources.asn END,
       last_seen = greatest(sources.last_seen, excluded.last_seen)";

/// How often an idle connection is checked.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);

impl Store for PgStore {
    fn describe(&self) -> String {
        format!("postgresql {}", self.link.borrow().settings.shown)
    }

    fn ping(&mut self) -> Result<(), StoreError> {
        self.link.get_mut().ping()
    }

    fn keep_alive(&mut self) {
        let link = self.link.get_mut();
        if link.idle_for() >= KEEP_ALIVE {
            let _ = link.ping();
        }
    }

    fn add_totp(&mut self, cred: &TotpCredential) -> Result<(), StoreError> {
        let sealed = self.seal_totp(cred);
        self.write(async |conn: &mut Conn| {
            let (client, cache) = conn.parts();
            insert_totp(&*client, cache, cred, &sealed).await
        })
    }

    fn totp_credentials(&self, user: &str) -> Result<Vec<TotpCredential>, StoreError> {
        self.rows(SELECT_TOTP, &[&user])?
            .iter()
            .map(|row| self.open_totp(row))
            .collect()
    }

    fn accept_totp(
        &mut self,
        id: &str,
        step: u64,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.accept(
            "UPDATE credentials SET last_step = $2 WHERE id = $1 AND (last_step IS NULL OR last_step < $2)",
            &[&id, &int(step)],
            success,
        )
    }

    fn accept_recovery_code(
        &mut self,
        row: i64,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.accept(
            "UPDATE recovery_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
            &[&row, &int(success.time)],
            success,
        )
    }

    fn add_fido2(&mut self, key: &Fido2Credential) -> Result<(), StoreError> {
        let sealed = self.seal_fido2(key);
        self.write(async |conn: &mut Conn| {
            let (client, cache) = conn.parts();
            insert_fido2(&*client, cache, key, &sealed).await
        })
    }

    fn fido2_credentials(&self, user: &str) -> Result<Vec<(Fido2Credential, u32)>, StoreError> {
        self.rows(SELECT_FIDO2, &[&user])?
            .iter()
            .map(|row| self.open_fido2(row))
            .collect()
    }

    fn accept_fido2(
        &mut self,
        id: &str,
        sign_count: u32,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.accept(
            "UPDATE fido2_credentials SET sign_count = $2
             WHERE id = $1 AND NOT suspect AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))",
            &[&id, &i64::from(sign_count)],
            success,
        )
    }

    fn mark_suspect(&mut self, id: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE fido2_credentials SET suspect = true WHERE id = $1",
            &[&id],
        )
        .map(drop)
    }

    /// Nothing to fold: the server owns durability.
    fn checkpoint(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn list(&self, user: &str) -> Result<Vec<CredentialSummary>, StoreError> {
        Ok(self
            .rows(LIST, &[&user])?
            .iter()
            .map(|r| CredentialSummary {
                id: r.get(0),
                method: r.get(1),
                label: r.get(2),
                created: uint(r.get(3)),
            })
            .collect())
    }

    fn remove(&mut self, user: &str, id: &str) -> Result<bool, StoreError> {
        self.write(async |conn: &mut Conn| {
            let tx = conn.client.transaction().await.map_err(OpError::read)?;
            let mut changed = 0;
            for sql in [
                "DELETE FROM credentials WHERE user_name = $1 AND id = $2",
                "DELETE FROM fido2_credentials WHERE user_name = $1 AND id = $2",
                "DELETE FROM ssh_keys WHERE user_name = $1 AND id = $2",
            ] {
                changed += tx
                    .execute(sql, &[&user, &id])
                    .await
                    .map_err(OpError::write)?;
            }
            if id == "recovery" {
                changed += tx
                    .execute("DELETE FROM recovery_codes WHERE user_name = $1", &[&user])
                    .await
                    .map_err(OpError::write)?
                    .min(1);
            }
            tx.commit().await.map_err(OpError::write)?;
            Ok(changed >= 1)
        })
    }

    fn credential_count(&self) -> Result<u64, StoreError> {
        let rows = self.rows("SELECT count(*) FROM credentials", &[])?;
        Ok(rows.first().map_or(0, |r| uint(r.get(0))))
    }

    fn record(&mut self, entry: &HistoryEntry) -> Result<(), StoreError> {
        self.write(async |conn: &mut Conn| {
            let (client, cache) = conn.parts();
            insert_history(&*client, cache, entry).await
        })
    }

    fn history(&self, user: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .rows(
                "SELECT time, user_name, service, tty, rhost, method, outcome, host FROM history
                 WHERE user_name = $1 ORDER BY id DESC LIMIT $2",
                &[&user, &limit],
            )?
            .iter()
            .map(|r| HistoryEntry {
                time: uint(r.get(0)),
                user: r.get(1),
                service: r.get(2),
                tty: r.get(3),
                rhost: r.get(4),
                method: r.get(5),
                outcome: r.get(6),
                host: r.get(7),
            })
            .collect())
    }

    fn last_success(
        &self,
        user: &str,
        since: u64,
        same: Option<(HistoryColumn, &str)>,
    ) -> Result<Option<u64>, StoreError> {
        let (sql, value) = match same {
            None => (LAST_SUCCESS_ANY, ""),
            Some((HistoryColumn::Tty, v)) => (LAST_SUCCESS_TTY, v),
            Some((HistoryColumn::Rhost, v)) => (LAST_SUCCESS_RHOST, v),
        };
        let rows = self.rows(sql, &[&user, &int(since), &value])?;
        Ok(rows
            .first()
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .map(uint))
    }

    fn failures_since(&self, user: &str, since: u64) -> Result<u64, StoreError> {
        self.failures_since_after(user, since, 0)
    }

    fn failures_since_after(
        &self,
        user: &str,
        since: u64,
        after_row: i64,
    ) -> Result<u64, StoreError> {
        let rows = self.rows(
            "SELECT count(*) FROM history WHERE user_name = $1 AND time >= $2 AND id > $3 AND outcome IN ('wrong_code', 'replay', 'bad_signature')",
            &[&user, &int(since), &after_row],
        )?;
        Ok(rows.first().map_or(0, |r| uint(r.get(0))))
    }

    fn source_last_seen(&self, user: &str, rhost: &str) -> Result<Option<u64>, StoreError> {
        let rows = self.rows(
            "SELECT last_seen FROM sources WHERE user_name = $1 AND rhost = $2",
            &[&user, &rhost],
        )?;
        Ok(rows.first().map(|r| uint(r.get(0))))
    }

    fn mark_source_seen(
        &mut self,
        user: &str,
        rhost: &str,
        time: u64,
        located: Option<&GeoFacts>,
    ) -> Result<(), StoreError> {
        let country = located.and_then(|l| l.country.as_deref());
        let city = located.and_then(|l| l.city.as_deref());
        let coordinates = located.and_then(|l| l.coordinates);
        let radius = located.and_then(|l| l.accuracy_radius_km).map(i32::from);
        let asn = located.and_then(|l| l.asn).map(i64::from);
        self.execute(
            MARK_SOURCE_SEEN,
            &[
                &user,
                &rhost,
                &int(time),
                &country,
                &city,
                &coordinates.map(|c| c.0),
                &coordinates.map(|c| c.1),
                &radius,
                &asn,
            ],
        )
        .map(drop)
    }

    fn country_last_seen(&self, user: &str, country: &str) -> Result<Option<u64>, StoreError> {
        let rows = self.rows(
            "SELECT max(last_seen) FROM sources WHERE user_name = $1 AND country = $2",
            &[&user, &country],
        )?;
        Ok(rows
            .first()
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .map(uint))
    }

    fn last_located_source(&self, user: &str) -> Result<Option<PreviousAttempt>, StoreError> {
        let rows = self.rows(
            "SELECT last_seen, rhost, country, city, latitude, longitude, accuracy_radius
             FROM sources WHERE user_name = $1 AND latitude IS NOT NULL AND longitude IS NOT NULL
             ORDER BY last_seen DESC LIMIT 1",
            &[&user],
        )?;
        Ok(rows.first().map(|r| PreviousAttempt {
            time: uint(r.get(0)),
            rhost: r.get(1),
            country: r.get(2),
            city: r.get(3),
            coordinates: (r.get(4), r.get(5)),
            accuracy_radius_km: r
                .get::<_, Option<i32>>(6)
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(0),
        }))
    }

    fn forget_locations_before(&mut self, before: u64) -> Result<usize, StoreError> {
        self.execute(
            "UPDATE sources SET country = NULL, city = NULL, latitude = NULL, longitude = NULL, accuracy_radius = NULL, asn = NULL
             WHERE last_seen < $1 AND (country IS NOT NULL OR latitude IS NOT NULL OR asn IS NOT NULL)",
            &[&int(before)],
        )
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn lockout(&self, user: &str) -> Result<Option<LockoutRow>, StoreError> {
        let rows = self.rows(
            "SELECT locked_at, locked_until, reset_at FROM lockout WHERE user_name = $1",
            &[&user],
        )?;
        Ok(rows.first().map(|r| LockoutRow {
            locked_at: r.get::<_, Option<i64>>(0).map(uint),
            locked_until: r.get::<_, Option<i64>>(1).map(uint),
            reset_at: r.get(2),
        }))
    }

    fn lock(&mut self, user: &str, at: u64, until: Option<u64>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO lockout (user_name, locked_at, locked_until) VALUES ($1, $2, $3)
             ON CONFLICT (user_name) DO UPDATE SET locked_at = excluded.locked_at, locked_until = excluded.locked_until",
            &[&user, &int(at), &until.map(int)],
        )
        .map(drop)
    }

    fn unlock(&mut self, user: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO lockout (user_name, locked_at, locked_until, reset_at)
             VALUES ($1, NULL, NULL, (SELECT coalesce(max(id), 0) FROM history))
             ON CONFLICT (user_name) DO UPDATE SET locked_at = NULL, locked_until = NULL, reset_at = excluded.reset_at",
            &[&user],
        )
        .map(drop)
    }

    fn replace_recovery_codes(
        &mut self,
        user: &str,
        hashes: &[String],
        now: u64,
    ) -> Result<(), StoreError> {
        let sealed: Vec<Vec<u8>> = hashes.iter().map(|h| self.seal_recovery(user, h)).collect();
        self.write(async |conn: &mut Conn| {
            let (client, cache) = conn.parts();
            let tx = client.transaction().await.map_err(OpError::read)?;
            tx.execute("DELETE FROM recovery_codes WHERE user_name = $1", &[&user])
                .await
                .map_err(OpError::write)?;
            for hash in &sealed {
                insert_recovery(&tx, cache, (user, hash, now)).await?;
            }
            tx.commit().await.map_err(OpError::write)
        })
    }

    fn unused_recovery_codes(&self, user: &str) -> Result<Vec<(i64, String)>, StoreError> {
        let binding = recovery_binding(user);
        self.rows(
            "SELECT id, hash FROM recovery_codes WHERE user_name = $1 AND used_at IS NULL ORDER BY id",
            &[&user],
        )?
        .iter()
        .map(|r| {
            let sealed: Vec<u8> = r.get(1);
            let hash = self.keys.open(&sealed, &binding)?;
            let hash = String::from_utf8(hash.to_vec())
                .map_err(|_| StoreError::Shared("a recovery code hash is not text".into()))?;
            Ok((r.get(0), hash))
        })
        .collect()
    }

    fn import(&mut self, batch: &ImportBatch) -> Result<(), StoreError> {
        let totp: Vec<(&TotpCredential, Vec<u8>)> =
            batch.totp.iter().map(|c| (c, self.seal_totp(c))).collect();
        let recovery: Vec<(&str, Vec<u8>, u64)> = batch
            .recovery
            .iter()
            .map(|(user, hash, created)| (user.as_str(), self.seal_recovery(user, hash), *created))
            .collect();
        let fido2: Vec<(&Fido2Credential, Vec<u8>)> = batch
            .fido2
            .iter()
            .map(|k| (k, self.seal_fido2(k)))
            .collect();
        let ssh: Vec<(&SshKeyCredential, Vec<u8>)> = batch
            .ssh_keys
            .iter()
            .map(|k| (k, self.seal_ssh_key(k)))
            .collect();
        self.write(async |conn: &mut Conn| {
            let (client, cache) = conn.parts();
            let tx = client.transaction().await.map_err(OpError::read)?;
            for (cred, sealed) in &totp {
                insert_totp(&tx, cache, cred, sealed).await?;
            }
            for (user, sealed, created) in &recovery {
                insert_recovery(&tx, cache, (user, sealed, *created)).await?;
            }
            for (key, sealed) in &fido2 {
                insert_fido2(&tx, cache, key, sealed).await?;
            }
            for (key, sealed) in &ssh {
                insert_ssh_key(&tx, cache, key, sealed).await?;
            }
            tx.commit().await.map_err(OpError::write)
        })
    }

    fn prune_history(&mut self, before: u64) -> Result<usize, StoreError> {
        self.execute("DELETE FROM history WHERE time < $1", &[&int(before)])
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn credential_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(!self
            .rows("SELECT 1 FROM credentials WHERE id = $1", &[&id])?
            .is_empty())
    }

    fn add_ssh_key(&mut self, key: &SshKeyCredential) -> Result<(), StoreError> {
        let sealed = self.seal_ssh_key(key);
        self.write(async |conn: &mut Conn| {
            let (client, cache) = conn.parts();
            insert_ssh_key(&*client, cache, key, &sealed).await
        })
    }

    fn ssh_keys(&self, user: &str) -> Result<Vec<(SshKeyCredential, u32)>, StoreError> {
        self.rows(
            "SELECT id, user_name, public_key, label, created, counter FROM ssh_keys
             WHERE user_name = $1 AND NOT suspect ORDER BY created, id",
            &[&user],
        )?
        .iter()
        .map(|r| self.open_ssh_key(r))
        .collect()
    }

    fn accept_ssh_key(
        &mut self,
        id: &str,
        counter: u32,
        success: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.accept(
            "UPDATE ssh_keys SET counter = $2 WHERE id = $1 AND NOT suspect AND counter < $2",
            &[&id, &i64::from(counter)],
            success,
        )
    }

    fn mark_ssh_key_suspect(&mut self, id: &str) -> Result<(), StoreError> {
        self.execute("UPDATE ssh_keys SET suspect = true WHERE id = $1", &[&id])
            .map(drop)
    }

    fn login_key_last_seen(
        &self,
        user: &str,
        fingerprint: &str,
    ) -> Result<Option<u64>, StoreError> {
        let rows = self.rows(
            "SELECT last_seen FROM login_keys WHERE user_name = $1 AND fingerprint = $2",
            &[&user, &fingerprint],
        )?;
        Ok(rows.first().map(|r| uint(r.get(0))))
    }

    fn mark_login_key_seen(
        &mut self,
        user: &str,
        fingerprint: &str,
        time: u64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO login_keys (user_name, fingerprint, last_seen) VALUES ($1, $2, $3)
             ON CONFLICT (user_name, fingerprint) DO UPDATE SET last_seen = greatest(login_keys.last_seen, excluded.last_seen)",
            &[&user, &fingerprint, &int(time)],
        )
        .map(drop)
    }
}
