import gzip
import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from genevae.data.io import read, write_h5ad
from genevae.errors import GenevaeError

GENES = ["ENSG00000000003", "ENSG00000000005", "ENSG00000000419", "ENSG00000000457"]
SAMPLES = ["S1", "S2", "S3"]


@pytest.fixture
def counts() -> np.ndarray:
    """(3 samples, 4 genes) integer counts, each entry distinct."""
    return np.arange(12, dtype=np.float32).reshape(3, 4) * 7 % 23


def write_table(path, frame: pd.DataFrame, sep: str = ",") -> None:
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            frame.to_csv(handle, sep=sep)
    else:
        frame.to_csv(path, sep=sep)


def genes_by_samples(counts: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(counts.T, index=GENES, columns=SAMPLES)


def samples_by_genes(counts: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(counts, index=SAMPLES, columns=GENES)


def assert_samples_by_genes(adata: ad.AnnData, counts: np.ndarray) -> None:
    assert list(adata.obs_names) == SAMPLES
    assert list(adata.var_names) == GENES
    assert adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.X, counts)


# --- text tables ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sep"),
    [
        ("m.csv", ","),
        ("m.tsv", "\t"),
        ("m.txt", "\t"),
        ("m.txt", " "),
        ("m.csv.gz", ","),
        ("m.tsv.gz", "\t"),
    ],
)
def test_text_with_genes_in_rows_is_transposed(tmp_path, counts, name, sep):
    write_table(tmp_path / name, genes_by_samples(counts), sep)
    assert_samples_by_genes(read(tmp_path / name), counts)


def test_text_with_genes_in_columns_is_kept(tmp_path, counts):
    write_table(tmp_path / "m.csv", samples_by_genes(counts))
    assert_samples_by_genes(read(tmp_path / "m.csv"), counts)


def test_orientation_is_logged_with_the_transpose_hint(tmp_path, counts, caplog):
    write_table(tmp_path / "m.csv", genes_by_samples(counts))
    with caplog.at_level(logging.INFO, logger="genevae.data.io"):
        read(tmp_path / "m.csv")
    assert "genes in rows" in caplog.text
    assert "gene identifiers" in caplog.text
    assert "--transpose" in caplog.text


def test_transpose_flips_the_detected_orientation(tmp_path, counts):
    write_table(tmp_path / "m.csv", genes_by_samples(counts))
    adata = read(tmp_path / "m.csv", transpose=True)
    assert list(adata.obs_names) == GENES
    np.testing.assert_array_equal(adata.X, counts.T)


@pytest.mark.parametrize(
    ("shape", "genes_in_rows"),
    [((30, 4), True), ((4, 30), False)],  # names do not tell: the longer side holds genes
)
def test_orientation_falls_back_to_the_longer_side(tmp_path, shape, genes_in_rows, caplog):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.integers(0, 9, size=shape),
        index=[f"r{i}" for i in range(shape[0])],
        columns=[f"c{j}" for j in range(shape[1])],
    )
    write_table(tmp_path / "m.csv", frame)
    with caplog.at_level(logging.INFO, logger="genevae.data.io"):
        adata = read(tmp_path / "m.csv")
    assert adata.n_vars == max(shape)
    assert "names are inconclusive" in caplog.text


def test_barcodes_in_rows_and_symbols_in_columns(tmp_path):
    barcodes = [f"AAACCTGAGAAGGC{end}-1" for end in ("AA", "AC", "AG", "AT", "CA")]
    frame = pd.DataFrame(np.ones((5, 2)), index=barcodes, columns=["CD3E", "MS4A1"])
    write_table(tmp_path / "m.csv", frame)  # more rows than columns, but names decide
    assert list(read(tmp_path / "m.csv").var_names) == ["CD3E", "MS4A1"]


def test_header_without_corner_cell(tmp_path, counts):
    lines = ["\t".join(SAMPLES)] + [
        "\t".join([gene, *map(str, row)])
        for gene, row in zip(GENES, counts.T.astype(int), strict=True)
    ]
    (tmp_path / "m.tsv").write_text("\n".join(lines) + "\n")
    assert_samples_by_genes(read(tmp_path / "m.tsv"), counts)


def test_non_numeric_cell_names_row_column_and_value(tmp_path, counts):
    frame = genes_by_samples(counts).astype(object)
    frame.loc["ENSG00000000419", "S2"] = "1,5"
    frame.loc["ENSG00000000457", "S1"] = "abc"
    write_table(tmp_path / "m.tsv", frame, "\t")
    with pytest.raises(GenevaeError) as error:
        read(tmp_path / "m.tsv")
    message = str(error.value)
    assert "'1,5'" in message
    assert "ENSG00000000419" in message and "'S2'" in message
    assert "m.tsv" in message


@pytest.mark.parametrize("duplicate", ["gene", "sample"])
def test_duplicate_names_are_named(tmp_path, counts, duplicate):
    frame = genes_by_samples(counts)
    if duplicate == "gene":
        frame.index = [GENES[0], GENES[1], GENES[0], GENES[3]]
    else:
        frame.columns = ["S1", "S1", "S3"]
    write_table(tmp_path / "m.csv", frame)
    with pytest.raises(GenevaeError, match=f"{duplicate} names occur more than once") as error:
        read(tmp_path / "m.csv")
    assert (GENES[0] if duplicate == "gene" else "'S1'") in str(error.value)


def test_ragged_table_is_reported(tmp_path):
    (tmp_path / "m.csv").write_text(",S1,S2\nA,1,2\nB,1,2,3\n")
    with pytest.raises(GenevaeError, match="cannot be parsed"):
        read(tmp_path / "m.csv")


def test_header_only_table_is_empty(tmp_path):
    (tmp_path / "m.csv").write_text(",S1,S2\n")
    with pytest.raises(GenevaeError, match="holds no matrix"):
        read(tmp_path / "m.csv")


# --- 10x -----------------------------------------------------------------------------------


def write_10x(folder, matrix: sp.spmatrix, gz: bool = False, features: str = "features.tsv"):
    """Write a genes x cells 10x folder; ``matrix`` is cells x genes."""
    folder.mkdir(parents=True, exist_ok=True)
    n_cells, n_genes = matrix.shape
    scipy.io.mmwrite(folder / "matrix.mtx", sp.coo_matrix(matrix.T))
    genes = pd.DataFrame(
        {
            "id": [f"ENSG{i:011d}" for i in range(n_genes)],
            "symbol": [f"SYM{i}" for i in range(n_genes)],
            "type": "Gene Expression",
        }
    )
    genes.to_csv(folder / features, sep="\t", header=False, index=False)
    pd.Series([f"BARCODE{i}-1" for i in range(n_cells)]).to_csv(
        folder / "barcodes.tsv", header=False, index=False
    )
    if gz:
        for name in ("matrix.mtx", features, "barcodes.tsv"):
            path = folder / name
            with gzip.open(folder / f"{name}.gz", "wb") as handle:
                handle.write(path.read_bytes())
            path.unlink()


@pytest.fixture
def sparse_counts() -> sp.csr_matrix:
    return sp.random(
        6, 5, density=0.4, format="csr", random_state=0, data_rvs=lambda n: np.arange(1, n + 1)
    ).astype(np.float32)


@pytest.mark.parametrize(
    ("gz", "features"), [(False, "features.tsv"), (True, "features.tsv"), (False, "genes.tsv")]
)
def test_10x_folder_is_read_as_cells_by_genes(tmp_path, sparse_counts, gz, features):
    write_10x(tmp_path / "tenx", sparse_counts, gz=gz, features=features)
    adata = read(tmp_path / "tenx")
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.X.toarray(), sparse_counts.toarray())
    assert adata.obs_names[0] == "BARCODE0-1"
    assert adata.var_names[1] == "ENSG00000000001"
    assert adata.var["gene_symbols"].iloc[1] == "SYM1"


def test_10x_matrix_file_path_is_accepted(tmp_path, sparse_counts):
    write_10x(tmp_path / "tenx", sparse_counts)
    assert read(tmp_path / "tenx" / "matrix.mtx").shape == sparse_counts.shape


def test_corrupt_mtx_is_reported(tmp_path, sparse_counts):
    write_10x(tmp_path / "tenx", sparse_counts)
    text = (tmp_path / "tenx" / "matrix.mtx").read_text().splitlines()
    (tmp_path / "tenx" / "matrix.mtx").write_text("\n".join(text[: len(text) // 2]) + "\n")
    with pytest.raises(GenevaeError, match="corrupt or truncated") as error:
        read(tmp_path / "tenx")
    assert "matrix.mtx" in str(error.value)


def test_10x_lists_must_match_the_matrix(tmp_path, sparse_counts):
    write_10x(tmp_path / "tenx", sparse_counts)
    (tmp_path / "tenx" / "barcodes.tsv").write_text("A-1\nB-1\n")
    with pytest.raises(GenevaeError, match="2 barcodes"):
        read(tmp_path / "tenx")


def test_10x_folder_without_barcodes(tmp_path, sparse_counts):
    write_10x(tmp_path / "tenx", sparse_counts)
    (tmp_path / "tenx" / "barcodes.tsv").unlink()
    with pytest.raises(GenevaeError, match="barcodes.tsv"):
        read(tmp_path / "tenx")


def test_directory_without_matrix(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenevaeError, match="no matrix.mtx"):
        read(tmp_path / "empty")


# --- h5ad ----------------------------------------------------------------------------------


@pytest.fixture
def h5ad_with_layer(tmp_path, sparse_counts):
    adata = ad.AnnData(
        np.log1p(sparse_counts.toarray()),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(6)]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(5)]),
        layers={"counts": sparse_counts.astype(np.int64)},
    )
    path = tmp_path / "data.h5ad"
    adata.write_h5ad(path)
    return path


def test_h5ad_reads_x(h5ad_with_layer, sparse_counts):
    adata = read(h5ad_with_layer)
    assert isinstance(adata.X, np.ndarray) and adata.X.dtype == np.float32
    np.testing.assert_allclose(adata.X, np.log1p(sparse_counts.toarray()), rtol=1e-6)


def test_h5ad_layer_becomes_x_and_stays_sparse(h5ad_with_layer, sparse_counts):
    adata = read(h5ad_with_layer, layer="counts")
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.X.toarray(), sparse_counts.toarray())


def test_missing_layer_names_the_layers_present(h5ad_with_layer):
    with pytest.raises(GenevaeError, match="no layer 'raw'.*'counts'"):
        read(h5ad_with_layer, layer="raw")


def test_truncated_h5ad_is_reported(h5ad_with_layer):
    data = h5ad_with_layer.read_bytes()
    h5ad_with_layer.write_bytes(data[: len(data) // 2])
    with pytest.raises(GenevaeError, match="corrupt or truncated.*Re-export"):
        read(h5ad_with_layer)


def test_empty_h5ad_is_reported(tmp_path):
    ad.AnnData(np.zeros((0, 3), dtype=np.float32)).write_h5ad(tmp_path / "empty.h5ad")
    with pytest.raises(GenevaeError, match="empty matrix.*0 cells x 3 genes"):
        read(tmp_path / "empty.h5ad")


def test_write_h5ad_round_trips_atomically(tmp_path, h5ad_with_layer):
    adata = read(h5ad_with_layer, layer="counts")
    write_h5ad(adata, tmp_path / "out" / "copy.h5ad")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["copy.h5ad"]
    again = read(tmp_path / "out" / "copy.h5ad")
    np.testing.assert_array_equal(again.X.toarray(), adata.X.toarray())


# --- paths and options ---------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(GenevaeError, match="does not exist"):
        read(tmp_path / "nope.h5ad")


@pytest.mark.parametrize("name", ["data.loom", "data.h5", "data.xlsx"])
def test_unknown_extension_lists_supported_ones(tmp_path, name):
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(GenevaeError, match=r"unknown file type.*\.h5ad, \.csv, \.tsv"):
        read(tmp_path / name)


def test_layer_on_a_text_table_is_refused(tmp_path, counts):
    write_table(tmp_path / "m.csv", samples_by_genes(counts))
    with pytest.raises(GenevaeError, match="--layer 'counts' applies to .h5ad"):
        read(tmp_path / "m.csv", layer="counts")


# --- sample sheet --------------------------------------------------------------------------


def test_sample_sheet_is_joined_as_categories(tmp_path, counts):
    write_table(tmp_path / "m.csv", genes_by_samples(counts))
    sheet = pd.DataFrame(
        {"tissue": ["lung", "liver", "lung"], "batch": [1, 2, 1]}, index=["S3", "S1", "S2"]
    )  # another order, numbers as categories
    sheet.loc["S9"] = ["skin", 3]  # an extra sample is ignored
    sheet.to_csv(tmp_path / "sheet.csv")
    adata = read(tmp_path / "m.csv", sample_sheet=tmp_path / "sheet.csv")
    assert list(adata.obs["tissue"]) == ["liver", "lung", "lung"]
    assert list(adata.obs["batch"]) == ["2", "1", "1"]
    assert isinstance(adata.obs["tissue"].dtype, pd.CategoricalDtype)


def test_sample_sheet_missing_samples_are_counted_and_named(tmp_path, counts):
    write_table(tmp_path / "m.csv", genes_by_samples(counts))
    pd.DataFrame({"tissue": ["lung"]}, index=["S2"]).to_csv(tmp_path / "sheet.csv")
    with pytest.raises(GenevaeError, match="lacks 2 of the 3 samples") as error:
        read(tmp_path / "m.csv", sample_sheet=tmp_path / "sheet.csv")
    assert "'S1'" in str(error.value) and "'S3'" in str(error.value)


def test_missing_sample_sheet(tmp_path, counts):
    write_table(tmp_path / "m.csv", genes_by_samples(counts))
    with pytest.raises(GenevaeError, match="sample sheet .* does not exist"):
        read(tmp_path / "m.csv", sample_sheet=tmp_path / "sheet.csv")
