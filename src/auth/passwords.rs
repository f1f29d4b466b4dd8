//! Password hashing with Argon2id, with bounded concurrency and bounded memory.
//!
//! Argon2id is memory-hard by design: every hash fills 19 MiB. Run on the blocking pool without
//! a bound, a few hundred concurrent failed logins took the process to gigabytes, and glibc kept
//! most of it afterwards. So hashing runs on a fixed set of **lanes**, one thread per core for
//! the whole process, each reusing one memory area of its own (freed again after a quiet
//! minute): at most `lanes × 19 MiB` is ever in use for hashing, however many requests arrive.
//!
//! In front of the lanes, each server instance admits at most `lanes + queue` login
//! verifications at once ([`Verifier`]); a login beyond that is answered at once with
//! [`PasswordError::Busy`] (503 with `Retry-After`) instead of waiting in an unbounded queue.
//! Setting a new password (an authenticated, rarer act) waits its turn instead.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// Why a password was refused or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_CHARS`].
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Longer than [`MAX_PASSWORD_BYTES`].
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// Every lane and queue place is taken: try again in a moment.
    #[error("too many password checks in progress; retry shortly")]
    Busy,
    /// Argon2 failed (it does not, for valid parameters) or a lane was lost.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// The shortest new password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The longest password accepted anywhere (new or presented at login), in bytes: Argon2 reads
/// all of it, and nobody types more.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The most memory one stored hash may ask for (64 MiB); a hash that wants more is refused
/// rather than letting one row of the database size the process.
const MAX_MEMORY_BLOCKS: u32 = 64 * 1024;

/// A lane frees its memory after this long without work.
const IDLE_RELEASE: Duration = Duration::from_secs(60);

/// Checks the length of a new password.
///
/// # Errors
/// [`PasswordError::TooShort`] or [`PasswordError::TooLong`].
pub fn check_new(password: &SecretString) -> Result<(), PasswordError> {
    let text = password.expose_secret();
    if text.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if text.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// Hashes a new `password` (Argon2id, default parameters, random salt) in PHC string form,
/// waiting for a lane.
///
/// # Errors
/// [`PasswordError::TooShort`] / [`PasswordError::TooLong`]; [`PasswordError::Hashing`] when a
/// lane fails.
pub async fn hash(password: SecretString) -> Result<String, PasswordError> {
    check_new(&password)?;
    static WAITING: OnceLock<Arc<Semaphore>> = OnceLock::new();
    let admission = WAITING.get_or_init(|| Arc::new(Semaphore::new(lanes().count * 8)));
    let permit = Arc::clone(admission)
        .acquire_owned()
        .await
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    match lanes().run(Work::Hash(password), permit).await? {
        Done::Hashed(hash) => Ok(hash),
        Done::Verified(_) => Err(PasswordError::Hashing("unexpected answer".to_owned())),
    }
}

/// Login verifications of one server instance: at most `lanes + queue` at once.
#[derive(Clone)]
pub struct Verifier {
    admission: Arc<Semaphore>,
}

impl Verifier {
    /// Admits `queue` verifications waiting beyond the lanes at work.
    pub fn new(queue: usize) -> Self {
        Self {
            admission: Arc::new(Semaphore::new(lanes().count + queue)),
        }
    }

    /// Whether `password` matches `stored`. With `stored = None` (no such agent) a dummy hash
    /// is checked instead, so the answer takes the same time whether or not the account exists.
    ///
    /// # Errors
    /// [`PasswordError::Busy`] at once when every place is taken; [`PasswordError::Hashing`]
    /// when a lane fails.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        if password.expose_secret().len() > MAX_PASSWORD_BYTES {
            return Ok(false);
        }
        let permit = Arc::clone(&self.admission)
            .try_acquire_owned()
            .map_err(|_| PasswordError::Busy)?;
        let known = stored.is_some();
        match lanes().run(Work::Verify(password, stored), permit).await? {
            Done::Verified(matches) => Ok(known && matches),
            Done::Hashed(_) => Err(PasswordError::Hashing("unexpected answer".to_owned())),
        }
    }
}

enum Work {
    Hash(SecretString),
    Verify(SecretString, Option<String>),
}

enum Done {
    Hashed(String),
    Verified(bool),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Done, PasswordError>>,
    /// Held until the lane is done: the admission place stays taken while the work runs.
    _permit: OwnedSemaphorePermit,
}

/// The process's hashing threads.
struct Lanes {
    jobs: mpsc::Sender<Job>,
    count: usize,
}

fn lanes() -> &'static Lanes {
    static LANES: OnceLock<Lanes> = OnceLock::new();
    LANES.get_or_init(|| {
        let count = std::thread::available_parallelism().map_or(1, usize::from);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for lane in 0..count {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-lane-{lane}"))
                .spawn(move || work(&queue));
            if let Err(error) = spawned {
                tracing::error!(%error, lane, "a password hashing lane could not start");
            }
        }
        Lanes { jobs, count }
    })
}

impl Lanes {
    async fn run(&self, work: Work, permit: OwnedSemaphorePermit) -> Result<Done, PasswordError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work,
            reply,
            _permit: permit,
        };
        self.jobs
            .send(job)
            .map_err(|_| PasswordError::Hashing("the hashing lanes stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| PasswordError::Hashing("a hashing lane was lost".to_owned()))?
    }
}

/// One lane: takes jobs in turn, hashing in its own reused memory.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let next = queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv_timeout(IDLE_RELEASE);
        let job = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                memory = Vec::new();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if job.reply.is_closed() {
            continue; // the client went away while the job waited
        }
        let done = match job.work {
            Work::Hash(password) => new_hash(password.expose_secret().as_bytes(), &mut memory)
                .map(Done::Hashed)
                .map_err(PasswordError::Hashing),
            Work::Verify(password, stored) => {
                let stored = stored.as_deref().unwrap_or_else(|| dummy_hash(&mut memory));
                Ok(Done::Verified(matches(
                    password.expose_secret().as_bytes(),
                    stored,
                    &mut memory,
                )))
            }
        };
        let _ = job.reply.send(done); // the client may have gone meanwhile
    }
}

/// Argon2id with default parameters into `memory`, as a PHC string (the same string
/// `argon2`'s own `hash_password` produces).
fn new_hash(password: &[u8], memory: &mut Vec<Block>) -> Result<String, String> {
    let params = Params::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| e.to_string())?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon
        .hash_password_into_with_memory(password, salt_bytes, &mut out, blocks(memory, &params))
        .map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e: argon2::password_hash::Error| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `stored`, computed in `memory`; false for a hash
/// that does not parse or asks for more than [`MAX_MEMORY_BLOCKS`].
fn matches(password: &[u8], stored: &str, memory: &mut Vec<Block>) -> bool {
    let result = recompute(password, stored, memory).unwrap_or(false);
    if memory.len() > Params::DEFAULT_M_COST as usize {
        // An unusual stored hash grew the area: give the excess back.
        memory.truncate(Params::DEFAULT_M_COST as usize);
        memory.shrink_to_fit();
    }
    result
}

/// Hashes `password` again with the algorithm, parameters and salt of `stored` and compares
/// the outputs in constant time.
fn recompute(
    password: &[u8],
    stored: &str,
    memory: &mut Vec<Block>,
) -> Result<bool, argon2::password_hash::Error> {
    let parsed = PasswordHash::new(stored)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&parsed)?;
    if params.m_cost() > MAX_MEMORY_BLOCKS {
        tracing::error!(
            m_cost = params.m_cost(),
            "a stored password hash asks for too much memory"
        );
        return Ok(false);
    }
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Ok(false);
    };
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password,
        salt_bytes,
        &mut out,
        blocks(memory, &params),
    )?;
    Ok(Output::new(&out)? == expected)
}

/// The first `params.block_count()` blocks of `memory`, grown as needed.
fn blocks<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    let needed = params.block_count();
    if memory.len() < needed {
        memory.resize(needed, Block::default());
    }
    &mut memory[..needed]
}

/// A hash of a password nobody has, checked when the email is unknown.
fn dummy_hash(memory: &mut Vec<Block>) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        new_hash(b"no such agent; this only burns time", memory).unwrap_or_default()
    })
}

/// A random password for the first admin: 20 characters from an unambiguous alphabet.
pub fn generate() -> SecretString {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    let text: String = (0..20)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    SecretString::from(text)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[test]
    fn lane_hashes_are_standard_phc_strings_both_ways() {
        let mut memory = Vec::new();
        let ours = new_hash(b"correct horse battery", &mut memory).expect("hashed");
        let parsed = PasswordHash::new(&ours).expect("PHC string");
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .expect("hashed")
            .to_string();
        assert!(matches(b"correct horse battery", &theirs, &mut memory));
        assert!(!matches(b"wrong horse battery", &theirs, &mut memory));
        assert!(!matches(
            b"correct horse battery",
            "not a hash",
            &mut memory
        ));
        assert_eq!(
            memory.len(),
            Params::DEFAULT_M_COST as usize,
            "memory is reused"
        );
    }

    #[test]
    fn new_passwords_are_bounded() {
        assert!(matches!(
            check_new(&SecretString::from("eleven char")),
            Err(PasswordError::TooShort)
        ));
        assert!(check_new(&SecretString::from("twelve chars")).is_ok());
        assert!(check_new(&SecretString::from("é".repeat(512))).is_ok());
        assert!(matches!(
            check_new(&SecretString::from("x".repeat(MAX_PASSWORD_BYTES + 1))),
            Err(PasswordError::TooLong)
        ));
    }
}
