import AETrainCore
import AETrainMPI
import ArgumentParser
import Foundation

struct PrepareLFW: JobCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare-lfw",
        abstract: "Turn an LFW JPEG tree into a float32 N×H×W .npy, with the pixels of scikit-learn's fetch_lfw_people.",
        discussion: """
            Crop rows 70–195 and columns 78–172, resize by --resize with Pillow's default filter (antialiased \
            bicubic), grey = mean of R, G, B in [0, 1]. People and files in sorted order (scikit-learn then shuffles; \
            aetrain does not). Writes OUT and, beside it, OUT with .csv (row,file,person). Under mpirun each rank \
            decodes its share of the files.
            """)

    @Argument(help: "The LFW tree: lfw/, lfw_funneled/ or lfw-deepfunneled/ (Person_Name/Person_Name_0001.jpg).")
    var directory: String

    @Option(help: "Output .npy file.")
    var out: String

    @Option(help: "Scale of the 125x94 crop: 0.5 gives 62x47, 0.3 gives 37x28.")
    var resize: Double = 0.5

    @Option(help: "Keep only people with at least this many images.")
    var minFacesPerPerson: Int = 0

    @OptionGroup var job: JobOptions

    func run(comm: Communicator) throws {
        let preparation = LFWPreparation(directory: directory, settings: LFWSettings(resize: resize, minFacesPerPerson: minFacesPerPerson),
                                         output: URL(fileURLWithPath: out))
        let written = try preparation.run(comm: comm) { event in
            switch event {
            case let .listed(images, people, shape, ranks):
                print("prepare-lfw: \(images) images of \(people) people → \(shape) pixels, \(ranks) rank(s)")
            case let .decoded(done, count):
                print("prepare-lfw: rank 0 decoded \(done) of its \(count) images (\(100 * done / count)%)")
            }
        }
        if comm.isRoot {
            print("wrote \(out) (\(written.images)×\(written.shape.height)×\(written.shape.width) float32) and \(written.sidecar.path)")
        }
    }
}
