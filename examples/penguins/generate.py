#!/usr/bin/env python3
"""Writes a synthetic penguins-like CSV of any size, for scale tests and benchmarks.

    python3 examples/penguins/generate.py --rows 1000000 --out /tmp/penguins-1m.csv

Same columns as data/penguins.csv (species, island, bill_length_mm, bill_depth_mm,
flipper_length_mm, body_mass_g, sex, year), drawn per species from normal distributions whose
means and deviations are those of the real table (rounded), with the real table's kinds of
missing values ("NA"). Deterministic: the same --rows and --seed give the same bytes. Streams
the rows, so memory does not grow with --rows.
"""

import argparse
import random
import sys

# species: (share, {island: share}, (mean, sd) of bill length, bill depth, flipper length, body mass)
SPECIES = [
    ("Adelie", 0.44, [("Biscoe", 0.29), ("Dream", 0.37), ("Torgersen", 0.34)],
     (38.8, 2.66), (18.3, 1.22), (190.0, 6.5), (3700.0, 459.0)),
    ("Chinstrap", 0.20, [("Dream", 1.0)],
     (48.8, 3.34), (18.4, 1.14), (195.8, 7.1), (3733.0, 384.0)),
    ("Gentoo", 0.36, [("Biscoe", 1.0)],
     (47.5, 3.08), (15.0, 0.98), (217.2, 6.5), (5076.0, 504.0)),
]
MISSING_MEASUREMENTS = 0.006  # the real table: 2 of 344 rows have no measurements at all
MISSING_SEX = 0.03            # the real table: 11 of 344


def pick(rng, choices):
    point = rng.random()
    for value, share in choices:
        point -= share
        if point < 0:
            return value
    return choices[-1][0]


def rows(count, seed):
    rng = random.Random(seed)
    species_choices = [(entry, entry[1]) for entry in SPECIES]
    for _ in range(count):
        name, _, islands, bill, depth, flipper, mass = pick(rng, species_choices)
        island = pick(rng, islands)
        sex = "male" if rng.random() < 0.5 else "female"
        # Males are larger: shift by half a deviation, as in the real table.
        shift = 0.5 if sex == "male" else -0.5
        values = [
            "%.1f" % (bill[0] + (rng.gauss(0, 1) + shift) * bill[1]),
            "%.1f" % (depth[0] + (rng.gauss(0, 1) + shift) * depth[1]),
            "%d" % round(flipper[0] + (rng.gauss(0, 1) + shift) * flipper[1]),
            "%d" % (round((mass[0] + (rng.gauss(0, 1) + shift) * mass[1]) / 25) * 25),
        ]
        if rng.random() < MISSING_MEASUREMENTS:
            values = ["NA"] * 4
        if rng.random() < MISSING_SEX:
            sex = "NA"
        year = 2007 + rng.randrange(3)
        yield ",".join([name, island] + values + [sex, str(year)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, required=True, help="number of data rows")
    parser.add_argument("--out", required=True, help="the CSV file to write ('-' for stdout)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0)")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="")
    try:
        out.write("species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n")
        batch = []
        for row in rows(args.rows, args.seed):
            batch.append(row)
            if len(batch) == 10000:
                out.write("\n".join(batch) + "\n")
                batch = []
        if batch:
            out.write("\n".join(batch) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    main()
