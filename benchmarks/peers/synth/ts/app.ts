// A plain aws-cdk-lib app of the same shape as eks-llm-stack's default profile, for benchmarks/synth.py:
// a VPC; EFS and two Secrets Manager secrets; an EKS cluster (aws-eks-v2, kubectl layer v35) with a system
// node group, a GPU managed node group, Karpenter-like resources (interruption queue, rules, node role,
// Helm release, NodePool/EC2NodeClass manifests) and add-ons; one vLLM Deployment + Service.
// Environment-agnostic, no lookups. Same aws-cdk-lib release as the Python package.
import { App, Duration, RemovalPolicy, Stack, StackProps } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as efs from "aws-cdk-lib/aws-efs";
import * as eks from "aws-cdk-lib/aws-eks-v2";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { KubectlV35Layer } from "@aws-cdk/lambda-layer-kubectl-v35";
import { Construct } from "constructs";

class NetworkStack extends Stack {
  readonly vpc: ec2.Vpc;
  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.vpc = new ec2.Vpc(this, "Vpc", { maxAzs: 3, natGateways: 1 });
    this.vpc.addFlowLog("FlowLog");
  }
}

class DataStack extends Stack {
  readonly fileSystem: efs.FileSystem;
  constructor(scope: Construct, id: string, vpc: ec2.IVpc, props?: StackProps) {
    super(scope, id, props);
    const key = new kms.Key(this, "Key", { enableKeyRotation: true });
    this.fileSystem = new efs.FileSystem(this, "ModelCache", {
      vpc,
      encrypted: true,
      kmsKey: key,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.fileSystem.addAccessPoint("Models", {
      path: "/models",
      posixUser: { uid: "1000", gid: "1000" },
      createAcl: { ownerUid: "1000", ownerGid: "1000", permissions: "750" },
    });
    for (const name of ["huggingface-token", "ngc-api-key"]) {
      new secretsmanager.Secret(this, name, { secretName: `llm/${name}`, encryptionKey: key });
    }
  }
}

class PlatformStack extends Stack {
  readonly cluster: eks.Cluster;
  constructor(scope: Construct, id: string, vpc: ec2.IVpc, props?: StackProps) {
    super(scope, id, props);
    this.cluster = new eks.Cluster(this, "Cluster", {
      version: eks.KubernetesVersion.V1_35,
      vpc,
      defaultCapacityType: eks.DefaultCapacityType.NODEGROUP,
      defaultCapacity: 0,
      endpointAccess: eks.EndpointAccess.PRIVATE,
      kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(this, "KubectlLayer") },
      clusterLogging: [eks.ClusterLoggingTypes.API, eks.ClusterLoggingTypes.AUDIT],
    });
    this.cluster.addNodegroupCapacity("System", {
      instanceTypes: [new ec2.InstanceType("m7i.large")],
      minSize: 2,
      maxSize: 4,
      amiType: eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
    });
    this.cluster.addNodegroupCapacity("Gpu", {
      instanceTypes: ["g6.xlarge", "g6.2xlarge", "g6e.xlarge", "g5.xlarge"].map((t) => new ec2.InstanceType(t)),
      minSize: 0,
      maxSize: 8,
      amiType: eks.NodegroupAmiType.AL2023_X86_64_NVIDIA,
      capacityType: eks.CapacityType.SPOT,
      labels: { "eks-llm-stack/pool": "inference" },
      taints: [{ key: "nvidia.com/gpu", effect: eks.TaintEffect.NO_SCHEDULE }],
    });
    for (const name of ["vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-efs-csi-driver"]) {
      new eks.Addon(this, `Addon-${name}`, { cluster: this.cluster, addonName: name });
    }
    // Karpenter-like: interruption queue and rules, node role, controller, a GPU NodePool.
    const queue = new sqs.Queue(this, "Interruption", { retentionPeriod: Duration.minutes(5), enforceSSL: true });
    for (const [rule, pattern] of Object.entries({
      Spot: { source: ["aws.ec2"], detailType: ["EC2 Spot Instance Interruption Warning"] },
      Rebalance: { source: ["aws.ec2"], detailType: ["EC2 Instance Rebalance Recommendation"] },
      State: { source: ["aws.ec2"], detailType: ["EC2 Instance State-change Notification"] },
      Health: { source: ["aws.health"], detailType: ["AWS Health Event"] },
    })) {
      new events.Rule(this, `Rule${rule}`, { eventPattern: pattern, targets: [new targets.SqsQueue(queue)] });
    }
    const nodeRole = new iam.Role(this, "NodeRole", {
      assumedBy: new iam.ServicePrincipal("ec2.amazonaws.com"),
      managedPolicies: ["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"].map(
        (p) => iam.ManagedPolicy.fromAwsManagedPolicyName(p),
      ),
    });
    const controller = new iam.Role(this, "KarpenterController", {
      assumedBy: new iam.ServicePrincipal("pods.eks.amazonaws.com"),
    });
    controller.addToPolicy(
      new iam.PolicyStatement({
        actions: ["ec2:CreateFleet", "ec2:RunInstances", "ec2:CreateLaunchTemplate", "ec2:TerminateInstances"],
        resources: ["*"],
      }),
    );
    queue.grantConsumeMessages(controller);
    nodeRole.grantPassRole(controller);
    new eks.CfnPodIdentityAssociation(this, "KarpenterIdentity", {
      clusterName: this.cluster.clusterName,
      namespace: "kube-system",
      serviceAccount: "karpenter",
      roleArn: controller.roleArn,
    });
    const karpenter = this.cluster.addHelmChart("Karpenter", {
      chart: "karpenter",
      repository: "oci://public.ecr.aws/karpenter/karpenter",
      namespace: "kube-system",
      version: "1.8.1",
      values: { settings: { clusterName: this.cluster.clusterName, interruptionQueue: queue.queueName } },
    });
    const pool = this.cluster.addManifest(
      "GpuPool",
      {
        apiVersion: "karpenter.k8s.aws/v1",
        kind: "EC2NodeClass",
        metadata: { name: "inference" },
        spec: {
          role: nodeRole.roleName,
          amiSelectorTerms: [{ alias: "al2023@latest" }],
          subnetSelectorTerms: [{ tags: { "karpenter.sh/discovery": "llm" } }],
          securityGroupSelectorTerms: [{ tags: { "karpenter.sh/discovery": "llm" } }],
          blockDeviceMappings: [{ deviceName: "/dev/xvda", ebs: { volumeSize: "200Gi", encrypted: true } }],
        },
      },
      {
        apiVersion: "karpenter.sh/v1",
        kind: "NodePool",
        metadata: { name: "inference" },
        spec: {
          template: {
            spec: {
              nodeClassRef: { group: "karpenter.k8s.aws", kind: "EC2NodeClass", name: "inference" },
              requirements: [
                { key: "karpenter.k8s.aws/instance-family", operator: "In", values: ["g6", "g6e", "g5"] },
                { key: "karpenter.sh/capacity-type", operator: "In", values: ["spot", "on-demand"] },
              ],
              taints: [{ key: "nvidia.com/gpu", effect: "NoSchedule" }],
            },
          },
          limits: { "nvidia.com/gpu": 16 },
        },
      },
    );
    pool.node.addDependency(karpenter);
    // The other controllers of a GPU platform: a Pod Identity role and a pinned Helm release each.
    const controllers: [string, string, string, string][] = [
      ["nvidia-device-plugin", "https://nvidia.github.io/k8s-device-plugin", "0.18.0", "kube-system"],
      ["external-secrets", "https://charts.external-secrets.io", "0.20.4", "external-secrets"],
      ["aws-load-balancer-controller", "https://aws.github.io/eks-charts", "1.14.1", "kube-system"],
      ["kube-prometheus-stack", "https://prometheus-community.github.io/helm-charts", "79.1.0", "monitoring"],
      ["dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts", "4.6.0", "monitoring"],
    ];
    for (const [name, repository, version, namespace] of controllers) {
      const role = new iam.Role(this, `${name}-role`, { assumedBy: new iam.ServicePrincipal("pods.eks.amazonaws.com") });
      new eks.CfnPodIdentityAssociation(this, `${name}-identity`, {
        clusterName: this.cluster.clusterName,
        namespace,
        serviceAccount: name,
        roleArn: role.roleArn,
      });
      this.cluster.addHelmChart(name, { chart: name, repository, version, namespace, createNamespace: true });
    }
    this.cluster.addManifest("Storage", {
      apiVersion: "storage.k8s.io/v1",
      kind: "StorageClass",
      metadata: { name: "efs" },
      provisioner: "efs.csi.aws.com",
    });
  }
}

class ServingStack extends Stack {
  constructor(scope: Construct, id: string, cluster: eks.ICluster, props?: StackProps) {
    super(scope, id, props);
    const labels = { app: "llama-3-8b" };
    new eks.KubernetesManifest(this, "Model", {
      cluster,
      manifest: [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "llm-serving" } },
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "llama-3-8b", namespace: "llm-serving", labels },
          spec: {
            replicas: 1,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: {
                tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
                containers: [
                  {
                    name: "vllm",
                    image: "vllm/vllm-openai:v0.11.0",
                    args: ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000"],
                    ports: [{ name: "http", containerPort: 8000 }],
                    resources: { limits: { "nvidia.com/gpu": 1 } },
                  },
                ],
              },
            },
          },
        },
        {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: "llama-3-8b", namespace: "llm-serving", labels },
          spec: { selector: labels, ports: [{ name: "http", port: 8000, targetPort: "http" }] },
        },
      ],
    });
  }
}

const app = new App();
const network = new NetworkStack(app, "Peer-Network");
const data = new DataStack(app, "Peer-Data", network.vpc);
const platform = new PlatformStack(app, "Peer-Platform", network.vpc);
new ServingStack(app, "Peer-Serving", platform.cluster);
app.synth();
