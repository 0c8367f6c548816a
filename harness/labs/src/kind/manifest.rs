//! Argo CD's `install.yaml`: URL per version, pinned SHA-256 per version,
//! and a download-once cache that refuses bytes that do not match.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::KindError;

/// SHA-256 of `manifests/install.yaml` at each Argo CD tag, the bytes
/// raw.githubusercontent.com serves. Computed from the git blobs of the
/// tags in argoproj/argo-cd (`git show <tag>:manifests/install.yaml |
/// sha256sum`); v3.3.10 and v3.3.19 cross-checked against the file in the
/// Go module zips (proxy.golang.org, github.com/argoproj/argo-cd/v3).
/// Native `oci://` sources need v3.1.0 or later, so the table starts there.
pub const PINNED_INSTALL_SHA256: &[(&str, &str)] = &[
    (
        "v3.1.0",
        "3d4973d5c4a0cf3d8395450e0f27aa41e24333cef56a1117b6e66d3396ff1b66",
    ),
    (
        "v3.1.1",
        "7072c73afd49fa38a6f692e458521f37255854641a1e432731cfc5d2c265183d",
    ),
    (
        "v3.1.2",
        "d633b7b90144f8bec98541bda2f2fc5704512e821b708eec6a02963cab038d71",
    ),
    (
        "v3.1.3",
        "2214b6592d812040a7c77593f88ab7f324bc2cfd87c993a11743c7bb8763ff31",
    ),
    (
        "v3.1.4",
        "36e97d8424d3b8a6ea59a321ab239bb9d49e838299758e5c3759bcf41afd8590",
    ),
    (
        "v3.1.5",
        "210e4fdfa6934dbcc21a1597d6e500debe2976513b76517fdd31f8df8e0b96c4",
    ),
    (
        "v3.1.6",
        "62140eda913f61e4ca4171f85e0801c1f3f4b5de8c75f8eb1d6e2733e2fd6eaa",
    ),
    (
        "v3.1.7",
        "5b0f557831d0820ed935c05478f51206b787c735571a467fe803ec45bb17211f",
    ),
    (
        "v3.1.8",
        "ef7e0bc4219861f5e7028d10cf0e4be58cbe3c0a178aa9069eed5c5a0574eb98",
    ),
    (
        "v3.1.9",
        "39e1851b3b192b5aa0d2fb7c817796d6c4e23d782c2982e0c8b427c1137e8efc",
    ),
    (
        "v3.1.10",
        "8ca89e93944cc723daf27a0516f4fad2cf44bf7204cd67a19f96fe08686dd195",
    ),
    (
        "v3.1.11",
        "743d50534c405110b4e3b41e010f490336a131a32e2caa470f158399742c1240",
    ),
    (
        "v3.1.12",
        "39f1221c80274c4cde124f41f328c25028180072723c374ab34ca8ac6b6e6acb",
    ),
    (
        "v3.1.13",
        "e89be6c8fe86158ef31a4078fd0f2f9835e379e03ca114165d3a43d3591d91ae",
    ),
    (
        "v3.1.14",
        "36511f941c0840cfe4321b59af7d3a272d46b95b47e11715ba394267c83d1c14",
    ),
    (
        "v3.1.15",
        "66b151847b2c7f33755bd2dec29c3961e42b3c6c91312a005fedabce0cc83747",
    ),
    (
        "v3.1.16",
        "e2f69ec0c5fd716cc9122e5c66470827214595f32b4348b1c3b11de8f5fa7f47",
    ),
    (
        "v3.2.0",
        "51299a0ff760849a4b92bb6c0044875bc17f0725c0a475203cd555457b2e38a4",
    ),
    (
        "v3.2.1",
        "a5e687d4e38edc603a67e45316087fe89a06603be9de908b07ab0afe98352c61",
    ),
    (
        "v3.2.2",
        "75e73e0d5c7abf59dde24d91cee09330aaaa900b563a3e6db5567896b2858d7a",
    ),
    (
        "v3.2.3",
        "db2b309ec3272162b9242323f665cee22aa5d5f8922fb1aaa6a429634e2b23c9",
    ),
    (
        "v3.2.4",
        "418eb6b2cf5a460a04d8e58c5935bca7514eb06355e30502573e4e354d637dd7",
    ),
    (
        "v3.2.5",
        "ee087a1327b3c294163702aa3ea3737dc9e02ef4106b993b1568ab63fada4ed1",
    ),
    (
        "v3.2.6",
        "584d53e4155689b7ac7154f6e89206af8e9eae1db2e42784ca7d01bb122ceba8",
    ),
    (
        "v3.2.7",
        "0c9ab6ffbab9c5c1f34c417960e3ef6258aed131fb3e9ce96b4c2fd15a87763f",
    ),
    (
        "v3.2.8",
        "7fbf9c852b8a078018dc2735cf9cc02eae6599025cbdf734c0d3fa2113aefae4",
    ),
    (
        "v3.2.9",
        "a20131bd25ff5ad7ad9d421af431406813f53c087337237525a65365b6ff2762",
    ),
    (
        "v3.2.10",
        "eb9af7f0ca4ea1944ecd0d96a7107c5a8f9f1fb2f742440d340be033de609b25",
    ),
    (
        "v3.2.11",
        "6cdd269e07f27b50f9e481cc7e685443b26b79372001ff7868ff1543610417bd",
    ),
    (
        "v3.2.12",
        "1097a8e8cdc1ed00831ec35338584ecaa2f79d29868fc0c2c5be61cce96253b8",
    ),
    (
        "v3.3.0",
        "a6120f20bb0b8d458fa1753fefe7dd2c36eadfd8e09bbdf81ca61849ef6a2f6f",
    ),
    (
        "v3.3.1",
        "ef8640e5cc4c8dab66d3795577a7c34c6c5c55a6e2d1c22e107b915ed3cda5e3",
    ),
    (
        "v3.3.2",
        "bec08b774820f68182a1fe25e831aacbc7551004328da41f101de8a9eb15c384",
    ),
    (
        "v3.3.3",
        "6f6fadaf2ce5f331a9b3851329c19ae8b8fed5a999598f07a712987ac9c78592",
    ),
    (
        "v3.3.4",
        "9bd662fafe903d0d410a6ed01ab60f979c36bc023a30dbb0b7bcac998ed26d72",
    ),
    (
        "v3.3.5",
        "166420df1f9a2fe4e53f50801b40fb3032ff98ae1a6a4ec3205a04d7984a3f3c",
    ),
    (
        "v3.3.6",
        "b610fc3a0097307d305785fdaaa1ca01b18818c922455a169877c3537bd783ec",
    ),
    (
        "v3.3.7",
        "bf1844394bf6213a60d316c2e3b0229495eb1d97689347f427bb2db69c1b510e",
    ),
    (
        "v3.3.8",
        "75390e0cc232195d6d1a9614631f2beb0baa23ef227db380351ea235904a1f0d",
    ),
    (
        "v3.3.9",
        "0e12d46216952eb872dc2bd216da5ac834edae60647f4fe8852405bbc39ad6b5",
    ),
    (
        "v3.3.10",
        "46a2d29b20977f1b1da70a26c92ae89b09e4482cc67bb01a6e757ecd8fa2fc9e",
    ),
    (
        "v3.3.11",
        "db9d0dec3ec4af6916a2cf7cce1689f23cae43d1dfdb2b834969add4cebe1a2f",
    ),
    (
        "v3.3.12",
        "9e73ddd9729b6d2b6d700f94305e65ba4109d3bfe7e87357d640254e8b09b701",
    ),
    (
        "v3.3.13",
        "4a7e17229084fbe7c4923189bada5d8ddf3a8a86acf200dc13e4822f670d22fb",
    ),
    (
        "v3.3.14",
        "74fe2e5b57b1ca652078c262e057b563efc4dcd317d734479185c2623177aea8",
    ),
    (
        "v3.3.19",
        "383632a950f78e58b2354ad4dbe519d5d307b13d8b90562a0fc1352f50faf668",
    ),
];

/// The pinned checksum for `version`, if the table has it.
pub fn pinned_install_sha256(version: &str) -> Option<&'static str> {
    PINNED_INSTALL_SHA256
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, sha)| *sha)
}

/// Where Argo CD publishes the manifest of a tag.
pub fn argocd_install_url(version: &str) -> String {
    format!("https://raw.githubusercontent.com/argoproj/argo-cd/{version}/manifests/install.yaml")
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks `bytes` against `expected`; the error says where they came from.
pub fn verify(bytes: &[u8], expected: &str, origin: &str, version: &str) -> Result<(), KindError> {
    let actual = sha256_hex(bytes);
    if actual != expected {
        return Err(KindError::ChecksumMismatch {
            origin: origin.to_string(),
            version: version.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Returns the verified install.yaml of `version`: from `cache_path` when
/// it is there and matches, else downloaded from `url`, verified, then
/// cached (written to a temporary file and renamed, so a cache file is
/// always complete). A cached file that does not match is replaced.
pub async fn fetch_install_yaml(
    url: &str,
    version: &str,
    expected: &str,
    cache_path: &Path,
) -> Result<Vec<u8>, KindError> {
    if let Ok(bytes) = tokio::fs::read(cache_path).await
        && verify(&bytes, expected, &cache_path.display().to_string(), version).is_ok()
    {
        return Ok(bytes);
    }
    let response = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| KindError::Download {
            url: url.to_string(),
            message: e.to_string(),
        })?;
    let bytes = response
        .bytes()
        .await
        .map_err(|e| KindError::Download {
            url: url.to_string(),
            message: e.to_string(),
        })?
        .to_vec();
    verify(&bytes, expected, url, version)?;
    store(cache_path, &bytes).await?;
    Ok(bytes)
}

async fn store(cache_path: &Path, bytes: &[u8]) -> Result<(), KindError> {
    let io = |what: String| move |source| KindError::Io { what, source };
    let dir = cache_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(io(format!("create {}", dir.display())))?;
    let tmp = dir.join(format!(".install.yaml.{}", std::process::id()));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(io(format!("write {}", tmp.display())))?;
    tokio::fs::rename(&tmp, cache_path)
        .await
        .map_err(io(format!("rename into {}", cache_path.display())))?;
    Ok(())
}
