"""MonaiUNet: a 3D Slicer scripted module that segments the selected volume(s) with a monai-unet bundle.

The work is done by ``monai-unet segment`` in a background process started with Slicer's own Python
(``PythonSlicer``), as SlicerTotalSegmentator does: the selected volumes are written to ``.nrrd`` files in a fresh
temporary folder, the command writes a ``.seg.nrrd`` there, and the result is loaded as a segmentation node whose
segments carry the bundle's names and colours. Slicer stays responsive; the command's stage lines go to the log
box and its progress bar to the module's progress bar.

Everything that is not Slicer API (the command line, the temporary files, parsing progress, segment names and
colours) lives in ``MonaiUNetLib`` and is tested outside Slicer. The Slicer modules (``slicer``, ``qt``, ``ctk``)
are imported when Slicer loads this file; outside Slicer the file still imports, with placeholder base classes, so
that tools can read it.
"""

from __future__ import annotations

import os
import shutil

from MonaiUNetLib import (
    BundleSummary,
    ProgressParser,
    RunPlan,
    build_segment_command,
    install_plan,
    link_to_reference,
    merge_segments,
    plan_run,
    read_bundle_summary,
    read_seg_nrrd_segments,
    stop_process_tree,
)

try:
    from slicer.ScriptedLoadableModule import (
        ScriptedLoadableModule,
        ScriptedLoadableModuleLogic,
        ScriptedLoadableModuleWidget,
    )

    import slicer
except ImportError:  # outside Slicer: the classes below exist but cannot run
    slicer = None
    ScriptedLoadableModule = ScriptedLoadableModuleLogic = ScriptedLoadableModuleWidget = object

__all__ = ["MonaiUNet", "MonaiUNetLogic", "MonaiUNetWidget"]

_MAX_CHANNELS = 4


class MonaiUNet(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help panel."""

    def __init__(self, parent) -> None:
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "MONAI U-Net"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["monai-unet developers"]
        self.parent.helpText = (
            "Segment the selected volume(s) with a monai-unet bundle (U-Net, Ronneberger et al. 2015). Pick the "
            "bundle folder, one volume per input channel the bundle lists, and press Apply. The bundle runs in a "
            "background process ('monai-unet segment'); the result lies exactly on the first input volume."
        )
        self.parent.acknowledgementText = (
            "Built on MONAI (monai.io) and 3D Slicer. U-Net: Ronneberger, Fischer, Brox, MICCAI 2015."
        )


class MonaiUNetLogic(ScriptedLoadableModuleLogic):
    """Runs ``monai-unet segment`` on Slicer volumes in a ``qt.QProcess`` and loads the result."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.process = None
        self.plan: RunPlan | None = None

    @staticmethod
    def python_executable() -> str:
        """Slicer's Python interpreter (``PythonSlicer``), where monai-unet must be installed."""
        found = shutil.which("PythonSlicer")
        if not found:
            raise RuntimeError("PythonSlicer was not found on the PATH of this Slicer")
        return found

    @staticmethod
    def is_installed() -> bool:
        """Whether ``monai_unet`` can be imported in Slicer's Python."""
        import importlib
        import importlib.util

        importlib.invalidate_caches()  # a package pip installed during this session is found
        return importlib.util.find_spec("monai_unet") is not None

    @staticmethod
    def install(source: str) -> None:
        """Install monai-unet from ``source`` (a ``monai_unet-*.whl`` or a source checkout) into Slicer's Python:
        the package without dependencies, then its dependencies less torch, numpy and SimpleITK (checked first;
        Slicer's own SimpleITK is never replaced)."""
        plan = install_plan(source)
        slicer.util.pip_install(plan.package)
        if plan.requirements:
            slicer.util.pip_install(plan.requirements)

    def start(self, volumes, bundle: BundleSummary, options: dict, on_output, on_finished) -> None:
        """Write the volumes, start the command, and call back as output arrives and when the process ends.

        Args:
            volumes: ``vtkMRMLScalarVolumeNode`` per input channel, in the bundle's channel order.
            bundle: the bundle to run.
            options: ``device`` (``"cpu"``/``"cuda"``/None), ``tta`` and ``precise`` (bools).
            on_output: called with each chunk of text the process prints.
            on_finished: called with the exit code.
        """
        import qt

        if len(volumes) != bundle.channels:
            raise ValueError(f"{bundle.name} takes {bundle.channels} volume(s), {len(volumes)} selected")
        self.plan = plan_run(bundle.channels, slicer.app.temporaryPath)
        for node, path in zip(volumes, self.plan.inputs, strict=True):
            if not slicer.util.saveNode(node, str(path)):
                raise RuntimeError(f"could not write {node.GetName()} to {path}")
        command = build_segment_command(self.python_executable(), self.plan, bundle.root, **options)
        process = qt.QProcess()
        process.setProcessChannelMode(qt.QProcess.MergedChannels)
        environment = qt.QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(environment)
        process.connect(
            "readyReadStandardOutput()",
            lambda: on_output(bytes(process.readAllStandardOutput()).decode("utf-8", errors="replace")),
        )
        process.connect("finished(int)", on_finished)
        self.process = process
        process.start(command[0], command[1:])

    def cancel(self) -> None:
        """Stop the running process and the Python it started (``PythonSlicer`` is a launcher); its partial output
        is never at the output path: the command is atomic and removes its staging folder on SIGTERM."""
        if self.process is not None and self.process.processId() > 0:
            stop_process_tree(int(self.process.processId()))

    def load_result(self, bundle: BundleSummary, reference_volume, name: str):
        """Load the written ``.seg.nrrd`` as a segmentation node named ``name`` with the bundle's segment names and
        colours, on the reference volume's geometry; returns the node."""
        segments = merge_segments(read_seg_nrrd_segments(self.plan.output), bundle.segments)
        node = slicer.util.loadSegmentation(str(self.plan.output))
        node.SetName(name)
        link_to_reference(node, reference_volume, slicer.mrmlScene.GetSubjectHierarchyNode())
        segmentation = node.GetSegmentation()
        for info in segments:
            segment = segmentation.GetSegment(f"Segment_{info.value}")
            if segment is not None:
                segment.SetName(info.name)
                segment.SetColor(*info.color)
        node.CreateClosedSurfaceRepresentation()
        return node

    def cleanup(self) -> None:
        """Delete the run's temporary folder."""
        if self.plan is not None:
            shutil.rmtree(self.plan.work_dir, ignore_errors=True)
        self.plan = None
        self.process = None


class MonaiUNetWidget(ScriptedLoadableModuleWidget):
    """The module panel: bundle folder, input volumes, options, Apply/Cancel, progress and log."""

    def setup(self) -> None:
        import ctk
        import qt

        ScriptedLoadableModuleWidget.setup(self)
        self.logic = MonaiUNetLogic()
        self.bundle: BundleSummary | None = None
        self.parser = ProgressParser()
        form = qt.QFormLayout()
        box = ctk.ctkCollapsibleButton()
        box.text = "Segmentation"
        box.setLayout(form)
        self.layout.addWidget(box)

        self.bundle_path = ctk.ctkPathLineEdit()
        self.bundle_path.filters = ctk.ctkPathLineEdit.Dirs
        self.bundle_path.settingKey = "MonaiUNet/BundleFolder"
        self.bundle_path.connect("currentPathChanged(QString)", self.on_bundle_changed)
        form.addRow("Bundle folder:", self.bundle_path)
        self.bundle_label = qt.QLabel("pick a bundle folder")
        self.bundle_label.wordWrap = True
        form.addRow("", self.bundle_label)

        self.volume_selectors = []
        for i in range(_MAX_CHANNELS):
            selector = slicer.qMRMLNodeComboBox()
            selector.nodeTypes = ["vtkMRMLScalarVolumeNode"]
            selector.noneEnabled = False
            selector.addEnabled = False
            selector.removeEnabled = False
            selector.setMRMLScene(slicer.mrmlScene)
            form.addRow(f"Input {i + 1}:", selector)
            self.volume_selectors.append(selector)

        self.device = qt.QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        form.addRow("Device:", self.device)
        self.tta = qt.QCheckBox("mirror test-time augmentation (slower)")
        form.addRow("", self.tta)
        self.precise = qt.QCheckBox("strict float32 (slower, for reproducibility)")
        form.addRow("", self.precise)

        self.apply_button = qt.QPushButton("Apply")
        self.apply_button.connect("clicked(bool)", self.on_apply)
        self.cancel_button = qt.QPushButton("Cancel")
        self.cancel_button.enabled = False
        self.cancel_button.connect("clicked(bool)", self.logic.cancel)
        buttons = qt.QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.cancel_button)
        form.addRow(buttons)
        self.package_source = ctk.ctkPathLineEdit()
        self.package_source.filters = ctk.ctkPathLineEdit.Files | ctk.ctkPathLineEdit.Dirs
        self.package_source.nameFilters = ["monai-unet wheel (*.whl)", "source folder (*)"]
        self.package_source.settingKey = "MonaiUNet/PackageSource"
        self.install_button = qt.QPushButton("Install monai-unet from this wheel or folder into Slicer's Python")
        self.install_button.connect("clicked(bool)", self.on_install)
        installed = self.logic.is_installed()
        self.package_source.visible = self.install_button.visible = not installed
        form.addRow("Package:", self.package_source)
        form.addRow(self.install_button)

        self.progress = qt.QProgressBar()
        self.progress.setRange(0, 100)
        form.addRow(self.progress)
        self.log = qt.QPlainTextEdit()
        self.log.readOnly = True
        self.log.setMaximumBlockCount(2000)
        form.addRow(self.log)
        self.layout.addStretch(1)
        self.on_bundle_changed(self.bundle_path.currentPath)

    def on_bundle_changed(self, path: str) -> None:
        self.bundle = None
        try:
            self.bundle = read_bundle_summary(path) if path else None
        except ValueError as error:
            self.bundle_label.text = str(error)
        if self.bundle is not None:
            segments = ", ".join(s.name for s in self.bundle.segments) or "unnamed"
            self.bundle_label.text = f"{self.bundle.name}: inputs {', '.join(self.bundle.channel_names)}; " + (
                f"segments {segments}"
            )
        channels = self.bundle.channels if self.bundle is not None else 1
        for i, selector in enumerate(self.volume_selectors):
            selector.visible = i < channels
            selector.toolTip = self.bundle.channel_names[i] if self.bundle is not None and i < channels else ""
        self.apply_button.enabled = self.bundle is not None and channels <= _MAX_CHANNELS

    def on_install(self) -> None:
        with slicer.util.tryWithErrorDisplay("Installing monai-unet failed", waitCursor=True):
            self.logic.install(self.package_source.currentPath)
            self.package_source.visible = self.install_button.visible = not self.logic.is_installed()
            self.on_bundle_changed(self.bundle_path.currentPath)  # the bundle is read by monai-unet, now installed

    def on_apply(self) -> None:
        if self.bundle is None:
            return
        volumes = [s.currentNode() for s in self.volume_selectors[: self.bundle.channels]]
        if any(v is None for v in volumes):
            slicer.util.errorDisplay("Select a volume for every input channel.")
            return
        device = self.device.currentText
        options = {
            "device": None if device == "auto" else device,
            "tta": self.tta.checked,
            "precise": self.precise.checked,
        }
        self.parser = ProgressParser()
        self.progress.value = 0
        self.log.clear()
        self.apply_button.enabled = False
        self.cancel_button.enabled = True
        with slicer.util.tryWithErrorDisplay("Could not start monai-unet segment", waitCursor=True):
            try:
                self.logic.start(volumes, self.bundle, options, self.on_output, self.on_finished)
            except Exception:
                self.reset_buttons()
                self.logic.cleanup()
                raise

    def on_output(self, text: str) -> None:
        for line in self.parser.feed(text):
            self.log.appendPlainText(line)
        if self.parser.fraction is not None:
            self.progress.value = round(100 * self.parser.fraction)

    def on_finished(self, exit_code: int) -> None:
        for line in self.parser.finish():
            self.log.appendPlainText(line)
        self.reset_buttons()
        try:
            if exit_code == 0 and os.path.exists(str(self.logic.plan.output)):
                reference = self.volume_selectors[0].currentNode()
                name = f"{reference.GetName()} {self.bundle.name}"
                with slicer.util.tryWithErrorDisplay("Could not load the segmentation", waitCursor=True):
                    self.logic.load_result(self.bundle, reference, name)
                self.progress.value = 100
            elif exit_code == 2:
                slicer.util.errorDisplay("monai-unet refused the input; see the log for the reason.")
            else:
                slicer.util.errorDisplay(f"monai-unet segment failed (exit code {exit_code}); see the log.")
        finally:
            self.logic.cleanup()

    def reset_buttons(self) -> None:
        self.apply_button.enabled = self.bundle is not None
        self.cancel_button.enabled = False

    def cleanup(self) -> None:
        self.logic.cancel()
        self.logic.cleanup()
