//! The store contract: the same test bodies run against SQLite and MongoDB.
//!
//! Each test gets a fresh store (a new temp directory, or a new database on
//! the MongoDB wire server named by `ENSEMBLE_TEST_MONGODB_URI`, which the
//! test command starts). Every case lives in `cases.rs` and is listed once in
//! the `contract!` macro below, which expands it into `sqlite::NAME` and
//! `mongo::NAME`.

mod cases;
mod harness;

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = crate::harness::sqlite();
                    crate::cases::$name(&*t.store).await;
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = crate::harness::mongo().await;
                    crate::cases::$name(&*t.store).await;
                }
            )*
        }
    };
}

contract!(
    usernames_are_unique_regardless_of_case,
    users_are_found_by_name_in_any_case_and_by_id,
    login_failures_count_up_and_reset,
    failures_of_names_without_an_account_are_kept_and_forgotten,
    password_hash_can_be_replaced,
    tokens_are_kept_by_digest_and_revoked,
    expired_tokens_are_swept,
    sessions_list_members_newest_first,
    members_are_added_changed_and_removed,
    share_links_open_their_session_with_their_role,
    a_rename_changes_the_title_everywhere,
    deleting_a_session_removes_it_and_purging_removes_its_data,
    changes_to_a_missing_session_are_not_found,
    tickets_work_once,
    concurrent_takes_of_one_ticket_give_it_to_one_caller,
    expired_tickets_are_refused,
    doc_updates_load_in_order,
    duplicate_doc_seq_is_a_conflict,
    compaction_keeps_every_update,
    an_older_snapshot_never_replaces_a_newer_one,
    large_binary_updates_round_trip,
    runs_keep_code_status_and_output,
    runs_are_listed_newest_first_and_paged,
    restart_interrupts_only_this_nodes_unfinished_runs,
    finishing_a_missing_run_is_not_found,
    a_lease_is_held_by_one_node_until_it_expires,
    a_refused_node_can_ask_the_holder_for_the_session,
    concurrent_acquires_give_the_lease_to_one_node,
    a_takeover_interrupts_the_dead_nodes_runs_in_that_session,
);
