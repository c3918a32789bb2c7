"""The peer of scripts/bench.sh (issue 11): the script a bureau analyst writes with pandas and
openpyxl — read every return, check the IDs (GB 11643 check character), drop duplicates, count
distinct persons who passed per unit and category, write one consolidated workbook.

    python bench_peer.py OUT.xlsx RETURN.xlsx...      prints rows=N seconds=S
"""

import sys
import time

import pandas as pd

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def id_ok(s: str) -> bool:
    s = str(s).strip().upper()
    if len(s) != 18 or not s[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(s[:17], WEIGHTS))
    return CHECK[total % 11] == s[17]


def main() -> None:
    out, files = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    frames = []
    for f in files:
        cover = pd.read_excel(f, sheet_name="填报信息", header=None, engine="openpyxl")
        unit = str(cover.iloc[1, 1])
        month = str(cover.iloc[2, 1])
        roster = pd.read_excel(
            f, sheet_name="培训台账", dtype={"身份证号": str}, engine="openpyxl"
        )
        roster["单位"] = unit
        roster["报送月份"] = month
        frames.append(roster)
    rows = pd.concat(frames, ignore_index=True)
    rows["身份证号有效"] = rows["身份证号"].map(id_ok)
    counted = rows[rows["身份证号有效"] & (rows["考核结果"] == "合格")]
    counted = counted.drop_duplicates(subset=["单位", "人员类别", "身份证号"])
    summary = counted.pivot_table(
        index="单位", columns="人员类别", values="身份证号", aggfunc="count", fill_value=0
    )
    with pd.ExcelWriter(out, engine="openpyxl") as w:
        summary.to_excel(w, sheet_name="考核指标完成情况")
        rows.to_excel(w, sheet_name="培训台账", index=False)
    print(f"rows={len(rows)} seconds={time.perf_counter() - started:.3f}")


if __name__ == "__main__":
    main()
