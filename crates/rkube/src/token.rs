//! `rkube token`: prints an ExecCredential with an IAM token for kubeconfig `exec` users.

/// Flags of `rkube token` (those of `aws-iam-authenticator token`).
#[derive(clap::Args)]
pub struct TokenArgs {
    /// The cluster id the token is for (the server's --iam-cluster-id).
    #[arg(long, short = 'i', default_value = "")]
    cluster_id: String,
    /// Assume this role first and sign as its session.
    #[arg(long, short = 'r')]
    role_arn: Option<String>,
    /// STS region to sign for (default: from the AWS configuration).
    #[arg(long)]
    region: Option<String>,
    /// STS endpoint URL (default: the region's AWS endpoint).
    #[arg(long)]
    sts_endpoint: Option<String>,
    /// Read the cluster id from this DNS name's TXT record (falls back to --cluster-id).
    #[arg(long)]
    cluster_id_from_txt: Option<String>,
}

/// Prints the ExecCredential on stdout.
pub async fn run(a: TokenArgs) -> anyhow::Result<()> {
    let opts = rkube_iam::client::TokenOptions {
        cluster_id: a.cluster_id,
        role_arn: a.role_arn,
        region: a.region,
        sts_endpoint: a.sts_endpoint,
        cluster_id_from_txt: a.cluster_id_from_txt,
    };
    let credential = rkube_iam::client::exec_credential(&opts).await.map_err(|e| anyhow::anyhow!(e))?;
    println!("{credential}");
    Ok(())
}
