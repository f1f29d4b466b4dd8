use super::*;

fn st(sql: &'static str, args: Vec<SqlValue>) -> Statement {
    Statement::new(sql, args)
}

const UPSERT: &str = "insert into t (id, n, s)
    values ($1, $2, 'x') on conflict (id) do update set n = t.n + excluded.n";
const TOUCH: &str =
    "update t set n = coalesce(n, $1) * 2, s = case when $1 = 5 then 'five' else s end
    where id = $2";
const PLAIN: &str = "insert into p (x) values ($1)";

#[test]
fn shapes_are_read_from_the_sql() {
    assert!(matches!(
        Shape::of(UPSERT),
        Shape::Keyed { ref table, ref columns, ref key, form: Some(Form::Insert { .. }) }
            if table == "t" && columns == "id" && *key == [KeyPart::Arg(1)]
    ));
    assert!(matches!(
        Shape::of(TOUCH),
        Shape::Keyed { ref columns, ref key, form: Some(Form::Update { .. }), .. }
            if columns == "id" && *key == [KeyPart::Arg(2)]
    ));
    assert!(matches!(
        Shape::of("delete from tags where conversation_id = $1 and tag = 'vip'"),
        Shape::Keyed { ref columns, ref key, form: None, .. }
            if columns == "conversation_id,tag"
                && *key == [KeyPart::Arg(1), KeyPart::Constant("'vip'".into())]
    ));
    assert!(matches!(
        Shape::of(PLAIN),
        Shape::Table { form: Some(_), .. }
    ));
    // Ranges are table-wide and not foldable; a per-row tail is not foldable.
    assert!(matches!(
        Shape::of("update m set a = 1 where c = $1 and p < $2"),
        Shape::Table { form: None, .. }
    ));
    assert!(matches!(
        Shape::of("insert into t (id, n) values ($1, $2) on conflict (id) do update set n = $3"),
        Shape::Keyed { form: None, .. }
    ));
    for barrier in [
        "delete from i where rowid = (select seq from d where id = $1)",
        "insert into u (k) select k from t",
        "update t set n = 1 from u where t.id = u.k",
        "/* sqlite only */ insert into i(i) values('optimize')",
        "insert into t (id) values ($1), ($2)",
        "vacuum",
    ] {
        assert_eq!(Shape::of(barrier), Shape::Barrier, "{barrier}");
    }
    // Keywords inside strings are only text.
    assert!(matches!(
        Shape::of("insert into p (x) values ('select from where')"),
        Shape::Table { form: Some(_), .. }
    ));
}

#[test]
fn runs_over_different_rows_fold_and_one_rows_statements_keep_their_order() {
    let batch = vec![
        st(TOUCH, vec![1.into(), "a".into()]),
        st(UPSERT, vec!["a".into(), 1.into()]),
        st(TOUCH, vec![2.into(), "b".into()]),
        st(UPSERT, vec!["b".into(), 2.into()]),
        st(TOUCH, vec![3.into(), "a".into()]),
    ];
    let out = coalesce(batch);
    let sql: Vec<&str> = out.iter().map(|s| &*s.sql).collect();
    assert_eq!(out.len(), 3, "{sql:#?}");
    assert_eq!(
        sql[0],
        "update t set n = coalesce(n, v.column1) * 2, s = case when v.column1 = 5 then 'five' \
         else s end from (values (cast($1 as bigint), cast($2 as text)), ($3, $4)) as v \
         where id = v.column2"
    );
    assert_eq!(
        out[0].args,
        [1.into(), "a".into(), 2.into(), "b".into()] as [SqlValue; 4]
    );
    assert_eq!(
        sql[1],
        "insert into t (id, n, s) values ($1, $2, 'x'), ($3, $4, 'x') \
         on conflict (id) do update set n = t.n + excluded.n"
    );
    assert!(out[0].once && out[1].once);
    // The third statement on row "a" comes after the upsert of "a", alone and unchanged.
    assert_eq!(out[2], st(TOUCH, vec![3.into(), "a".into()]));
}

#[test]
fn barriers_and_table_wide_statements_keep_their_place() {
    let range = "update t set n = 0 where n > $1";
    let by_s = "update t set n = 1 where s = $1";
    let barrier = "delete from p where x = (select s from t where id = $1)";
    let batch = vec![
        st(PLAIN, vec!["1".into()]),
        st(PLAIN, vec!["2".into()]),
        st(TOUCH, vec![1.into(), "a".into()]),
        st(range, vec![5.into()]),
        st(TOUCH, vec![1.into(), "b".into()]),
        st(by_s, vec!["x".into()]),
        st(TOUCH, vec![1.into(), "c".into()]),
        st(barrier, vec!["a".into()]),
        st(PLAIN, vec!["3".into()]),
        st(PLAIN, vec!["4".into()]),
    ];
    let out = coalesce(batch);
    let order: Vec<(usize, Vec<SqlValue>)> = out
        .iter()
        .map(|s| {
            let kind = [PLAIN, TOUCH, range, by_s, barrier]
                .iter()
                .position(|k| *k == &*s.sql)
                .unwrap_or(9);
            (kind, s.args.clone())
        })
        .collect();
    let plain_folded = |a: &str, b: &str| (9, vec![a.into(), b.into()]);
    assert_eq!(
        order,
        [
            plain_folded("1", "2"),
            (1, vec![1.into(), "a".into()]),
            (2, vec![5.into()]),
            (1, vec![1.into(), "b".into()]),
            (3, vec!["x".into()]),
            (1, vec![1.into(), "c".into()]),
            (4, vec!["a".into()]),
            plain_folded("3", "4"),
        ]
    );
    assert_eq!(out[0].sql, "insert into p (x) values ($1), ($2) ");
}

#[test]
fn rows_with_other_argument_types_or_too_many_rows_fold_apart() {
    let many: Vec<Statement> = (0..(MAX_ROWS as i64 + 1))
        .map(|i| st(PLAIN, vec![i.into()]))
        .chain([st(PLAIN, vec!["text".into()])])
        .collect();
    let out = coalesce(many);
    let rows: Vec<usize> = out.iter().map(|s| s.args.len()).collect();
    assert_eq!(rows, [MAX_ROWS, 1, 1]);
}
