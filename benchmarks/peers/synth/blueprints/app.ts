// The cdk-eks-blueprints GPU blueprint (GpuBuilder: an EKS cluster with a GPU managed node group and the
// NVIDIA GPU operator add-on, plus the builder's default add-ons), as its documentation builds it, for
// benchmarks/synth.py. A fixed account and region (the blueprint needs an environment); no lookups.
import * as blueprints from "@aws-quickstart/eks-blueprints";
import { App } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as eks from "aws-cdk-lib/aws-eks";

const app = new App();
blueprints.GpuBuilder.builder({
  kubernetesVersion: eks.KubernetesVersion.V1_32,
  instanceClass: ec2.InstanceClass.G5,
  instanceSize: ec2.InstanceSize.XLARGE,
  desiredNodeSize: 1,
  minNodeSize: 0,
  maxNodeSize: 4,
})
  .account("123456789012")
  .region("us-east-1")
  .enableGpu()
  .build(app, "gpu-blueprint");
